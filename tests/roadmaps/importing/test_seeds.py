"""The five real seed checklists import into trees a person would accept."""

from __future__ import annotations

from pathlib import Path

import pytest

from skilltree.roadmaps.builtin import SEEDS_DIR
from skilltree.roadmaps.document import iter_topics
from skilltree.roadmaps.importing import ParsedRoadmap, parse_roadmap

MOJIBAKE_MARKERS = ("Ã", "â€", "ðŸ", "ğŸ", "ï¸", "Ÿ", "\uf8ff", "üö", "âœ", "\ufffd")


def parse_seed(prefix: str) -> ParsedRoadmap:
    (path,) = SEEDS_DIR.glob(f"{prefix}_*.txt")
    return parse_roadmap(path.read_bytes(), "markdown", source_name=path.name)


@pytest.mark.parametrize(
    ("seed", "sections", "topics", "items", "skipped", "encoding"),
    [
        ("000", 11, 64, 53, 3, None),
        ("001", 12, 73, 58, 0, None),
        ("002", 31, 118, 87, 0, "cp1252"),
        ("003", 12, 105, 91, 1, "mac_roman"),
        ("004", 23, 278, 254, 8, "cp1254"),
    ],
)
def test_seed_tree_shape(
    seed: str, sections: int, topics: int, items: int, skipped: int, encoding: str | None
) -> None:
    parsed = parse_seed(seed)

    assert len(parsed.document.topics) == sections
    assert len(iter_topics(parsed.document.topics)) == topics
    assert len(parsed.items) == items
    assert len(parsed.skipped) == skipped
    assert parsed.repaired_encoding == encoding


@pytest.mark.parametrize("seed", ["000", "001", "002", "003", "004"])
def test_no_mojibake_survives_in_any_title_or_summary(seed: str) -> None:
    parsed = parse_seed(seed)

    texts = [parsed.document.title] + [
        text
        for topic, _ in iter_topics(parsed.document.topics)
        for text in (topic.title, topic.summary)
    ]
    assert [t for t in texts if any(marker in t for marker in MOJIBAKE_MARKERS)] == []


def test_seed_000_takes_its_title_from_the_heading_over_its_sections() -> None:
    parsed = parse_seed("000")

    assert parsed.document.title == "Backend Learning Checklist (Essentials & Advanced)"
    assert parsed.document.topics[0].title == "Authentication & Authorization"
    assert parsed.document.topics[-1].title == "Bonus: Repetition & Practice"


def test_seed_001_groups_databases_under_their_bold_labels() -> None:
    databases = parse_seed("001").document.topics[2]

    assert [group.title for group in databases.children] == [
        "SQL (Relational)",
        "NoSQL (Non-Relational)",
        "ORM / Query Builders",
    ]


def test_seed_002_plain_lines_repaired_from_windows_1252() -> None:
    parsed = parse_seed("002")

    first = parsed.document.topics[0]
    assert first.title == "High-Level Understanding"
    assert [t.title for t in first.children] == [
        "What a backend system is",
        "How clients, servers, and databases interact",
        "Request–response lifecycle",
    ]
    assert parsed.document.topics[-1].title == "DevOps for Backend Engineers"


def test_seed_003_repaired_from_mac_roman() -> None:
    parsed = parse_seed("003")

    assert parsed.document.title == "Backend Development Learning Checklist"
    resilience = parsed.document.topics[3]
    assert resilience.title == "Error Handling & Resilience"
    assert resilience.children[0].title == "Custom Exception Hierarchies"


def test_seed_004_repaired_from_windows_1254_with_keycap_numbering_removed() -> None:
    parsed = parse_seed("004")

    titles = [section.title for section in parsed.document.topics]
    assert titles[0] == "COMPUTER SCIENCE FOUNDATIONS (YES, backend ka part hai)"
    assert titles[11] == "SECURITY (EVERY ATTACK)"
    assert titles[20] == "CLOUD BACKEND"
    assert "FINAL VERDICT (HONEST)" not in titles
    assert (399, "🔥 Is list ko topic-by-topic deep sikhaun") in parsed.skipped


def test_reparsing_a_seed_gives_identical_slugs() -> None:
    first = parse_seed("004").document
    second = parse_seed("004").document

    assert [t.slug for t, _ in iter_topics(first.topics)] == [
        t.slug for t, _ in iter_topics(second.topics)
    ]


def test_editing_one_item_changes_only_that_topic() -> None:
    (path,) = SEEDS_DIR.glob("001_*.txt")
    original = path.read_text(encoding="utf-8")
    edited = original.replace("- Query optimization\n", "- Query tuning\n")

    before = parse_roadmap(original.encode(), "markdown").document
    after = parse_roadmap(edited.encode(), "markdown").document

    old = {t.slug for t, _ in iter_topics(before.topics)}
    new = {t.slug for t, _ in iter_topics(after.topics)}
    assert old - new == {"query-optimization"}
    assert new - old == {"query-tuning"}


def test_the_seed_copies_are_byte_identical_to_what_they_were_written_from() -> None:
    shared = Path(__file__).resolve().parents[4] / "shared" / "seeds"
    if not shared.is_dir():
        pytest.skip("the shared seeds folder is not beside this checkout")
    for original in shared.glob("*.txt"):
        assert (SEEDS_DIR / original.name).read_bytes() == original.read_bytes()
