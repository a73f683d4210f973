"""docs/security.md maps OWASP ASVS requirements to the tests that prove them: every test it
names must exist, or the map claims proof that is gone. pytest itself collects the named files
(tests/support/collection.py), so a renamed, deleted or skipped-at-import test fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.collection import collected_node_ids

ROOT = Path(__file__).resolve().parents[2]
SECURITY_DOC = ROOT / "docs" / "security.md"
NAMED_TEST = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _named_tests() -> set[tuple[str, str]]:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    return {(match.group(1), match.group(2)) for match in NAMED_TEST.finditer(text)}


def test_every_test_named_in_the_security_doc_exists(request: pytest.FixtureRequest) -> None:
    named = _named_tests()
    assert len(named) > 100, "the ASVS map names far fewer tests than it did: was it parsed?"

    node_ids = collected_node_ids(request.session, {path for path, _ in named})
    collected = {node.split("[")[0] for node in node_ids}
    missing = {(path, name) for path, name in named if f"{path}::{name}" not in collected}

    assert not missing, "docs/security.md names tests that do not exist: " + ", ".join(
        f"{path}::{name}" for path, name in sorted(missing)
    )
