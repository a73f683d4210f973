"""What real README-style checklists contain, one defect each: distinct items, link lists,
tables, Latin-1 mojibake, long titles, description suffixes, non-ASCII titles, first headings."""

from __future__ import annotations

from pathlib import Path

import pytest

from skilltree.roadmaps.document import TopicDoc, iter_topics
from skilltree.roadmaps.importing import (
    ImportLimits,
    ParsedRoadmap,
    RoadmapImportError,
    parse_roadmap,
)
from skilltree.roadmaps.importing.encoding import decode

SEEDS = Path(__file__).parents[3] / "src/skilltree/roadmaps/builtin/seeds"


def parse(text: str, limits: ImportLimits | None = None) -> ParsedRoadmap:
    return parse_roadmap(text.encode(), "markdown", limits)


def leaves(parsed: ParsedRoadmap) -> list[TopicDoc]:
    return [topic for topic, _ in iter_topics(parsed.document.topics) if not topic.children]


def test_items_with_the_same_link_text_but_different_links_are_both_kept() -> None:
    parsed = parse(
        "# R\n\n## Videos\n\n"
        "- [ ] [CSE373 2020 - Lecture 10 (video)](https://example.org/10)\n"
        "- [ ] [CSE373 2020 - Lecture 11 (video)](https://example.org/11)\n"
        "- [ ] [Lecture](https://example.org/a)\n"
        "- [ ] [Lecture](https://example.org/b)\n"
    )

    topics = parsed.document.topics[0].children
    assert [t.title for t in topics] == [
        "CSE373 2020 - Lecture 10 (video)",
        "CSE373 2020 - Lecture 11 (video)",
        "Lecture",
        "Lecture",
    ]
    assert [t.resources[0].url for t in topics] == [
        "https://example.org/10",
        "https://example.org/11",
        "https://example.org/a",
        "https://example.org/b",
    ]
    assert len({t.slug for t in topics}) == 4
    assert parsed.warnings == []


def test_the_same_title_and_the_same_link_is_one_item() -> None:
    parsed = parse(
        "# R\n\n## S\n\n"
        "- [Heaps](https://example.org/h)\n  - a\n"
        "- [Heaps](https://example.org/h)\n  - b\n"
    )

    section = parsed.document.topics[0]
    assert [t.title for t in section.children] == ["Heaps"]
    assert [t.title for t in section.children[0].children] == ["a", "b"]
    assert parsed.warnings == ["line 7: duplicate 'Heaps' merged into line 5"]


def test_a_separator_after_a_link_still_splits_off_the_description() -> None:
    topic = parse("# R\n\n## S\n\n- [Tries](https://example.org/t) - prefix trees\n")
    item = topic.document.topics[0].children[0]

    assert (item.title, item.summary) == ("Tries", "prefix trees")


def test_a_table_of_contents_of_anchor_links_is_skipped_and_listed() -> None:
    parsed = parse(
        "# Study plan\n\n## Table of Contents\n\n"
        "- [Arrays](#arrays)\n"
        "- [Trees](#trees)\n"
        "  - [Heaps](#heaps)\n\n"
        "## Arrays\n\n- [ ] Dynamic arrays\n\n## Trees\n\n- [ ] Heaps\n"
    )

    assert [t.title for t in parsed.document.topics] == ["Arrays", "Trees"]
    assert [t.slug for t in parsed.document.topics] == ["arrays", "trees"]
    assert [line for line, _ in parsed.skipped] == [5, 6, 7]
    assert parsed.skipped[0][1].startswith("table of contents:")


def test_a_list_of_translation_links_is_skipped() -> None:
    parsed = parse(
        "# Plan\n\n## Translations\n\n"
        "- [Português](translations/README-pt.md)\n"
        "- [中文](translations/README-cn.md)\n"
        "- [Español](https://example.org/es/README.md)\n\n"
        "## Work\n\n- [ ] Something real\n"
    )

    assert [t.title for t in parsed.document.topics] == ["Work"]
    assert [line for line, _ in parsed.skipped] == [5, 6, 7]
    assert all(text.startswith("link list:") for _, text in parsed.skipped)


def test_a_list_of_badges_is_skipped() -> None:
    parsed = parse(
        "# Plan\n\n- [![build](https://img.example.org/b.svg)](https://ci.example.org)\n"
        "- [![license](https://img.example.org/l.svg)](https://example.org/LICENSE)\n\n"
        "## Work\n\n- [ ] Real\n"
    )

    assert [t.title for t in parsed.document.topics] == ["Work"]
    assert [line for line, _ in parsed.skipped] == [3, 4]


def test_prose_instructions_in_a_list_are_skipped() -> None:
    parsed = parse(
        "# Plan\n\n## How to use this\n\n"
        "- Fork this repository and tick each box as you finish it, then push your changes.\n"
        "- Don't worry if you don't understand everything the first time you read it.\n\n"
        "## Work\n\n- [ ] Hash tables\n- Linked lists\n"
    )

    assert [t.title for t in parsed.document.topics] == ["Work"]
    assert [t.title for t in parsed.document.topics[0].children] == ["Hash tables", "Linked lists"]
    assert [line for line, _ in parsed.skipped] == [5, 6]


def test_a_table_with_a_status_column_imports_row_by_row() -> None:
    parsed = parse(
        "# Tracker\n\n## Week 1\n\n"
        "| # | Topic | Status | Resource |\n"
        "|---|-------|--------|----------|\n"
        "| 1 | Big-O notation | ✅ | [notes](https://example.org/big-o) |\n"
        "| 2 | Arrays | In progress | |\n"
        "| 3 | Linked lists | ❌ | [video](https://example.org/ll) |\n"
    )

    rows = parsed.document.topics[0].children
    assert [(t.title, t.status) for t in rows] == [
        ("Big-O notation", "done"),
        ("Arrays", "in_progress"),
        ("Linked lists", "todo"),
    ]
    assert [r.url for r in rows[0].resources] == ["https://example.org/big-o"]
    assert [t.line for t in rows] == [7, 8, 9]
    assert [item.line for item in parsed.items] == [7, 8, 9]


def test_a_table_without_a_text_column_is_refused_naming_its_line() -> None:
    with pytest.raises(RoadmapImportError) as raised:
        parse("# R\n\n## S\n\n- ok\n\n| n | score |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n")

    assert raised.value.line == 7
    assert "table" in raised.value.detail


def test_headings_without_items_are_refused_with_a_message_that_says_so() -> None:
    with pytest.raises(RoadmapImportError) as raised:
        parse("# R\n\n## One\n\nSome prose.\n\n## Two\n\nMore prose.\n")

    assert "2 headings" in raised.value.detail
    assert raised.value.line == 3


LATIN1_MOJIBAKE = "# Plano\n\n## PortuguÃªs\n\n- Googleâ\x80\x99s style guide\n- Ã\x89tat\n"


def test_utf8_read_as_latin1_is_repaired() -> None:
    parsed = parse(LATIN1_MOJIBAKE)

    section = parsed.document.topics[0]
    assert section.title == "Português"
    assert [t.title for t in section.children] == ["Google\u2019s style guide", "État"]
    assert parsed.repaired_encoding == "latin-1"


def test_a_large_latin1_mojibake_file_is_repaired_everywhere() -> None:
    body = "".join(f"- Topic {n}: Googleâ\x80\x99s â\x80\x9cbestâ\x80\x9d\n" for n in range(300))

    text = decode(f"# Big\n\n## S\n\n{body}".encode()).text

    assert "\x80" not in text
    assert "Google\u2019s \u201cbest\u201d" in text


def test_seed_004_closing_quotes_are_restored() -> None:
    text = decode((SEEDS / "004_caca571303ad1942.txt").read_bytes()).text

    assert "\u2340" not in text
    assert "\u201cbackend ka har atom\u201d cover karegi" in text


def test_long_titles_are_cut_at_a_word_boundary_and_kept_whole_in_the_summary() -> None:
    words = " ".join(f"word{n}" for n in range(80))

    topic = parse(f"# R\n\n## S\n\n- {words}\n").document.topics[0].children[0]

    assert len(topic.title) <= 300
    assert topic.title.endswith("…")
    assert topic.title[:-1].rstrip() in words
    assert words.startswith(topic.title[:-1])
    assert topic.title[:-1].split()[-1] in words.split()
    assert topic.summary == words


@pytest.mark.parametrize(
    ("item", "title", "summary"),
    [
        ("Caching // keep hot rows in Redis", "Caching", "keep hot rows in Redis"),
        ("**Core** Sessions — server side", "Core Sessions", "server side"),
        ("Queues (RabbitMQ) — at-least-once", "Queues (RabbitMQ)", "at-least-once"),
    ],
)
def test_description_suffixes_go_to_the_summary(item: str, title: str, summary: str) -> None:
    topic = parse(f"# R\n\n## S\n\n- [ ] {item}\n").document.topics[0].children[0]

    assert (topic.title, topic.summary) == (title, summary)


def test_a_heading_description_goes_to_the_section_summary() -> None:
    section = parse("# R\n\n## Auth — who you are\n\n- JWT\n").document.topics[0]

    assert (section.title, section.summary, section.slug) == ("Auth", "who you are", "auth")


def test_non_ascii_titles_get_transliterated_slugs() -> None:
    parsed = parse("# Учебный план\n\n## Базы данных\n\n- 索引\n- Индексы\n")

    assert parsed.document.slug == "uchebnyy-plan"
    assert [t.slug for t, _ in iter_topics(parsed.document.topics)] == [
        "bazy-dannykh",
        "suoyin",
        "indeksy",
    ]


def test_a_first_h3_heading_is_the_title_and_its_paragraph_the_description() -> None:
    parsed = parse("### My backend checklist\n\nWhat I study this year.\n\n- [ ] HTTP\n- [ ] SQL\n")

    assert parsed.document.title == "My backend checklist"
    assert parsed.document.description == "What I study this year."
    assert [t.title for t in parsed.document.topics] == ["HTTP", "SQL"]


def test_a_first_heading_with_sibling_headings_is_a_section_not_the_title() -> None:
    parsed = parse("### One\n\n- a\n\n### Two\n\n- b\n")

    assert [t.title for t in parsed.document.topics] == ["One", "Two"]


def test_an_oversized_upload_is_roadmap_too_large() -> None:
    from skilltree.roadmaps.importing import RoadmapTooLarge

    with pytest.raises(RoadmapTooLarge):
        parse("# R\n\n- a\n" * 100, ImportLimits(max_bytes=100))
