""" "Implemented in skilltree": the source behind a topic's references, highlighted.

A module reference (`skilltree.platform.http.problems:problem_response`) is shown as the real
source of that function or class, read from the installed package: the file is found without
importing it and the symbol located with `ast`, so the lines shown are the lines that run. A
test reference (`tests/x.py::test_y`) shows the test's source when the tests sit beside the
package (a checkout), and always the command that runs it.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import skilltree

if TYPE_CHECKING:
    from pygments.formatters import HtmlFormatter

PACKAGE_DIR = Path(skilltree.__file__).resolve().parent
# src/skilltree -> the checkout's root, where tests/ lives (absent from an installed wheel).
CHECKOUT_DIR = PACKAGE_DIR.parent.parent
# A whole module is long: its head (docstring, imports, first definitions) says what it is.
MODULE_HEAD_LINES = 40
CSS_CLASS = "code"
LIGHT_STYLE = "friendly"
DARK_STYLE = "monokai"


@dataclass(frozen=True)
class Excerpt:
    path: str  # relative to the checkout: "src/skilltree/platform/errors.py"
    first_line: int
    last_line: int
    total_lines: int
    html: str  # highlighted, with line numbers


@dataclass(frozen=True)
class TestRef:
    node_id: str
    command: str
    excerpt: Excerpt | None


# Pygments loads with the first page that shows code, not in every worker (docs/web.md).
def _formatter(first_line: int) -> HtmlFormatter[str]:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(
        cssclass=CSS_CLASS, linenos="inline", linenostart=first_line, wrapcode=True
    )


def _excerpt(file: Path, lines: list[str], first: int, last: int) -> Excerpt:
    from pygments import highlight
    from pygments.lexers import PythonLexer

    source = "".join(lines[first - 1 : last])
    html = highlight(source, PythonLexer(), _formatter(first))
    try:
        shown = file.relative_to(CHECKOUT_DIR)
    except ValueError:
        shown = Path("skilltree") / file.relative_to(PACKAGE_DIR)
    return Excerpt(shown.as_posix(), first, last, len(lines), html)


def _span(tree: ast.Module, dotted: str) -> tuple[int, int] | None:
    """The lines of `Class`, `function` or `Class.method` (decorators included)."""
    body: list[ast.stmt] = tree.body
    node: ast.stmt | None = None
    for name in dotted.split("."):
        node = next((n for n in body if _defines(n, name)), None)
        if node is None:
            return None
        body = getattr(node, "body", [])
    assert node is not None
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(d.lineno for d in decorators)])
    return first, node.end_lineno or node.lineno


def _defines(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    if isinstance(node, ast.AnnAssign):
        return isinstance(node.target, ast.Name) and node.target.id == name
    return False


@lru_cache(maxsize=512)
def module_excerpt(target: str) -> Excerpt | None:
    """The source of `package.module[:Symbol]`, or None when it cannot be found."""
    module, _, symbol = target.partition(":")
    if not module.startswith("skilltree"):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    file = Path(spec.origin)
    text = file.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    if not symbol:
        return _excerpt(file, lines, 1, min(len(lines), MODULE_HEAD_LINES))
    span = _span(ast.parse(text), symbol)
    if span is None:
        return None
    return _excerpt(file, lines, *span)


@lru_cache(maxsize=512)
def test_ref(node_id: str) -> TestRef:
    """A pytest node id with the command that runs it, and its source when tests are here."""
    command = f".venv/bin/pytest '{node_id}' -q"
    path, _, name = node_id.partition("::")
    file = (CHECKOUT_DIR / path).resolve()
    excerpt = None
    if name and file.is_relative_to(CHECKOUT_DIR / "tests") and file.is_file():
        text = file.read_text(encoding="utf-8")
        span = _span(ast.parse(text), name.split("[")[0].replace("::", "."))
        if span is not None:
            excerpt = _excerpt(file, text.splitlines(keepends=True), *span)
    return TestRef(node_id, command, excerpt)


def stylesheet() -> str:
    """Token colours for highlighted code: light, and dark when the reader's system is."""
    from pygments.formatters import HtmlFormatter

    light = HtmlFormatter(style=LIGHT_STYLE).get_style_defs(f".{CSS_CLASS}")  # type: ignore[no-untyped-call]
    dark = HtmlFormatter(style=DARK_STYLE).get_style_defs(f".{CSS_CLASS}")  # type: ignore[no-untyped-call]
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
