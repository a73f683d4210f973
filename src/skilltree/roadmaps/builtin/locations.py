"""Where a concept-map reference lives: a file path and a line range, found from the object
itself (the imported function, the route's handler, the test's definition), so the lines follow
the code wherever it moves and never have to be kept up to date by hand."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import skilltree

# The repository root in a checkout (src/skilltree/.. /..); paths are shown relative to it.
PACKAGE_DIR = Path(skilltree.__file__).resolve().parent
ROOT = PACKAGE_DIR.parents[1] if PACKAGE_DIR.parent.name == "src" else PACKAGE_DIR.parent


@dataclass(frozen=True)
class Location:
    path: str  # relative to the repository root, with forward slashes
    line_start: int
    line_end: int


def locate(
    kind: str, target: str, endpoints: Mapping[str, Callable[..., object]] | None = None
) -> Location | None:
    """The file and lines of a reference, or None when it cannot be found here."""
    if kind == "module":
        return _module(target)
    if kind == "test":
        return _test(target)
    if kind == "endpoint" and endpoints is not None and target in endpoints:
        return _object(endpoints[target])
    if kind == "file":
        return _file(target)
    return None


@lru_cache(maxsize=1024)
def _module(target: str) -> Location | None:
    module_name, _, symbol = target.partition(":")
    try:
        found: object = importlib.import_module(module_name)
        for part in filter(None, symbol.split(".")):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    # A constant (a string, a frozen set) has no source of its own, and a decorated object
    # (a pytest fixture) may hide its function: find its definition in the module's syntax.
    return _object(found) or _assignment(module_name, symbol)


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _assignment(module_name: str, symbol: str) -> Location | None:
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None or "." in symbol:
        return None
    path = Path(spec.origin)
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        defines = isinstance(node, _DEFINITIONS) and node.name == symbol
        if defines or any(isinstance(t, ast.Name) and t.id == symbol for t in targets):
            return Location(_relative(path), node.lineno, node.end_lineno or node.lineno)
    return None


def _object(found: object) -> Location | None:
    try:
        source_file = inspect.getsourcefile(found)  # type: ignore[arg-type]
        lines, start = inspect.getsourcelines(found)  # type: ignore[arg-type]
    except (TypeError, OSError):
        return None
    if source_file is None:
        return None
    start = max(start, 1)
    return Location(_relative(Path(source_file)), start, start + len(lines) - 1)


@lru_cache(maxsize=1024)
def _test(target: str) -> Location | None:
    file_part, _, name = target.partition("::")
    path = ROOT / file_part
    if not path.is_file():
        return None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wanted = name.split("[", 1)[0].split("::")[-1]
    for node in ast.walk(tree):
        if isinstance(node, _DEFINITIONS) and node.name == wanted:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return Location(file_part, first, node.end_lineno or node.lineno)
    return None


@lru_cache(maxsize=256)
def _file(target: str) -> Location | None:
    path = ROOT / target
    if not path.is_file():
        return None
    return Location(target, 1, max(1, len(path.read_text(encoding="utf-8").splitlines())))


def _relative(path: Path) -> str:
    resolved = path.resolve()
    try:
        return resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return resolved.as_posix()
