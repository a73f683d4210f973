"""The node ids pytest collects from some test files, for tests about tests (the concept map's
and the security map's references must name tests that exist).

A run of the whole suite has collected every file already, in every worker: its items are the
answer, at no cost. A file the run did not collect (a run of a few files, or a file that skips
itself at import) is collected by `pytest --collect-only` in a process of its own, so a
renamed, deleted or skipped test is missing either way.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def collected_node_ids(session: pytest.Session, files: Iterable[str]) -> set[str]:
    """Node ids (`path::name[params]`) of the tests pytest collects from `files` (paths from
    the repository's root)."""
    wanted = set(files)
    in_this_run = _collected_by(session) if _collects_everything(session) else {}
    found = {node for file in wanted & in_this_run.keys() for node in in_this_run[file]}
    others = sorted(file for file in wanted - in_this_run.keys() if (ROOT / file).is_file())
    return found | (_collect_apart(others) if others else set())


def _collects_everything(session: pytest.Session) -> bool:
    """Whether the run kept every test of the files it collected: no -k, -m or --deselect."""
    option = session.config.option
    return not (option.keyword or option.markexpr or getattr(option, "deselect", None))


def _collected_by(session: pytest.Session) -> dict[str, set[str]]:
    by_file: dict[str, set[str]] = {}
    for item in session.items:
        by_file.setdefault(item.nodeid.partition("::")[0], set()).add(item.nodeid)
    return by_file


def _collect_apart(files: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", *files],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    # Whatever went wrong (a file that does not import), its tests are missing from the
    # answer, and the callers name each one.
    return {line.strip() for line in done.stdout.splitlines() if "::" in line}
