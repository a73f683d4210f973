"""docs/security.md maps OWASP ASVS requirements to the tests that prove them: every test it
names must exist, or the map claims proof that is gone. pytest itself collects the named files,
so a renamed, deleted or skipped-at-import test fails here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_DOC = ROOT / "docs" / "security.md"
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _named_tests() -> set[tuple[str, str]]:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    return {(match.group(1), match.group(2)) for match in NAMED_TEST.finditer(text)}


def _collected(files: list[str]) -> set[tuple[str, str]]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly",
         "-p", "no:cacheprovider", *files],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    node_ids = (line.split("[")[0] for line in done.stdout.splitlines() if "::" in line)
    return {(path, name) for path, _, name in (node.partition("::") for node in node_ids)}


def test_every_test_named_in_the_security_doc_exists() -> None:
    named = _named_tests()
    assert len(named) > 100, "the ASVS map names far fewer tests than it did: was it parsed?"

    missing = named - _collected(sorted({path for path, _ in named}))

    assert not missing, "docs/security.md names tests that do not exist: " + ", ".join(
        f"{path}::{name}" for path, name in sorted(missing)
    )
