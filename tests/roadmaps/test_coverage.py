"""The built-in roadmap covers every item of the seed checklists, each exactly once."""

from __future__ import annotations

from skilltree.roadmaps.builtin import seed_files
from skilltree.roadmaps.coverage import check_coverage, load_excluded


def test_every_seed_item_lands_in_exactly_one_topic() -> None:
    report = check_coverage(seed_files())

    unmapped = [f"{r.seed}:{r.line} {r.item}" for r in report.unmapped]
    assert unmapped == []
    assert report.ambiguous == {}
    assert len(report.rows) > 500


def test_every_excluded_line_gives_a_reason() -> None:
    excluded = load_excluded()

    assert excluded
    assert all(entry.reason.strip() for entry in excluded)


def test_builtin_topics_have_summaries_and_provenance(builtin_roadmap: object) -> None:
    from skilltree.roadmaps.document import iter_topics
    from skilltree.roadmaps.importing import ParsedRoadmap

    assert isinstance(builtin_roadmap, ParsedRoadmap)
    for topic, _depth in iter_topics(builtin_roadmap.document.topics):
        assert topic.summary.strip(), topic.slug
        if not topic.children:
            assert topic.why.strip(), topic.slug
            assert topic.level, topic.slug
            assert topic.seeds, topic.slug
            assert topic.aliases, topic.slug
