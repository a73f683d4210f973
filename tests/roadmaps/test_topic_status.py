"""Every leaf of the built-in roadmap says whether skilltree implements it, and coverage is
reported per section."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from skilltree.cli import app as cli
from skilltree.roadmaps.builtin import load_builtin, load_references, load_resources
from skilltree.roadmaps.builtin.locations import ROOT, locate
from skilltree.roadmaps.builtin.status import (
    coverage_by_section,
    implementation_of,
    leaves,
    load_status_file,
)
from skilltree.roadmaps.document import iter_topics

BUILTIN = load_builtin().document
STATUSES = load_status_file()
LEAVES = leaves(BUILTIN.topics)
runner = CliRunner()


def test_every_leaf_has_a_status() -> None:
    missing = [
        leaf.slug
        for leaf in LEAVES
        if implementation_of(leaf.slug or "", bool(leaf.implemented_in), STATUSES) is None
    ]

    assert missing == []


def test_the_status_file_names_only_leaves_of_the_roadmap() -> None:
    known = {leaf.slug for leaf in LEAVES}

    assert sorted(set(STATUSES.theory) - known) == []
    assert sorted(STATUSES.planned - known) == []


def test_each_theory_topic_says_why_in_one_line() -> None:
    for slug, reason in STATUSES.theory.items():
        assert reason.strip(), slug
        assert "\n" not in reason, slug
        assert len(reason) <= 120, slug


def test_a_theory_topic_has_no_references() -> None:
    references = load_references()

    assert sorted(set(STATUSES.theory) & set(references)) == []


def test_a_leaf_in_neither_file_has_no_status(tmp_path: Path) -> None:
    status_file = tmp_path / "topic_status.yaml"
    status_file.write_text("theory:\n  osi-model: A model.\nplanned: [dns]\n", encoding="utf-8")
    statuses = load_status_file(status_file)

    assert implementation_of("dns", False, statuses).status == "planned"  # type: ignore[union-attr]
    assert implementation_of("osi-model", False, statuses).reason == "A model."  # type: ignore[union-attr]
    assert implementation_of("dns", True, statuses).status == "implemented"  # type: ignore[union-attr]
    assert implementation_of("tcp-handshake", False, statuses) is None


def test_a_slug_both_planned_and_theory_is_refused(tmp_path: Path) -> None:
    status_file = tmp_path / "topic_status.yaml"
    status_file.write_text("theory:\n  dns: A.\nplanned: [dns]\n", encoding="utf-8")

    with pytest.raises(ValueError, match="dns"):
        load_status_file(status_file)


def test_coverage_is_the_implemented_share_of_leaves_that_are_not_theory() -> None:
    rows = {row.slug: row for row in coverage_by_section(BUILTIN.topics, STATUSES)}

    assert len(rows) == len(BUILTIN.topics)
    for row in rows.values():
        assert 0.0 <= row.share <= 1.0
    auth = rows["auth"]
    assert auth.implemented >= 18
    assert auth.share == auth.implemented / (auth.implemented + auth.planned)
    total = sum(r.implemented + r.planned + r.theory for r in rows.values())
    assert total == len(LEAVES)


def test_the_coverage_command_prints_the_share_per_section() -> None:
    result = runner.invoke(cli, ["roadmap", "coverage"])

    assert result.exit_code == 0, result.output
    assert "implemented (of leaves that are not theory), per section:" in result.output
    assert any(line.startswith("auth\t") and "%" in line for line in result.output.splitlines())
    assert "total\t" in result.output


def test_every_reference_has_a_file_and_lines_except_endpoints() -> None:
    for topic, _ in iter_topics(BUILTIN.topics):
        for ref in topic.implemented_in:
            if ref.kind == "endpoint":
                continue
            location = locate(ref.kind, ref.target)
            assert location is not None, (topic.slug, ref.target)
            assert (ROOT / location.path).is_file(), location
            assert 1 <= location.line_start <= location.line_end


def test_a_symbol_is_located_at_its_definition() -> None:
    location = locate("module", "skilltree.roadmaps.builtin.status:implementation_of")

    assert location is not None
    assert location.path == "src/skilltree/roadmaps/builtin/status.py"
    lines = (ROOT / location.path).read_text(encoding="utf-8").splitlines()
    assert lines[location.line_start - 1].startswith("def implementation_of(")
    assert lines[location.line_end - 1].strip().startswith("return None")


def test_ci_runs_the_same_make_target_as_a_developer() -> None:
    script = (ROOT / ".ci/run").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")

    assert "set -euo pipefail" in script
    assert "export CI=true" in script
    assert script.rstrip().endswith("exec make test")
    assert "\ntest:\n\t$(MAKE) -j 4 lint typecheck audit pytest\n" in makefile


def test_every_leaf_has_an_estimate_in_hours() -> None:
    assert [leaf.slug for leaf in LEAVES if not leaf.estimate_hours] == []
    assert {leaf.estimate_hours for leaf in LEAVES} <= {2.0, 4.0, 8.0} | {
        leaf.estimate_hours for leaf in LEAVES if leaf.level is None
    }


def test_resources_are_https_and_only_for_known_topics() -> None:
    added = load_resources()
    slugs = {topic.slug for topic, _ in iter_topics(BUILTIN.topics)}

    assert sorted(set(added) - slugs) == []
    for resources in added.values():
        assert resources
        for resource in resources:
            assert resource.url.startswith("https://"), resource.url
            assert resource.type in {"spec", "docs", "article", "book"}


def test_every_leaf_has_at_least_one_reading() -> None:
    missing = [leaf.slug for leaf in LEAVES if not leaf.resources]

    assert missing == []


def test_every_deployment_cloud_and_operations_leaf_is_implemented_or_theory() -> None:
    """What can be shown of running the service is shown (with references that resolve,
    tests/roadmaps/test_concept_map.py); the rest says why not."""
    sections = {"devops", "cloud", "operations"}
    undecided = [
        leaf.slug
        for section in BUILTIN.topics
        if section.slug in sections
        for leaf in leaves([section])
        if (status := implementation_of(leaf.slug or "", bool(leaf.implemented_in), STATUSES))
        is None
        or status.status == "planned"
    ]

    assert undecided == []
