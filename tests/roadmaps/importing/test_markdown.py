"""The markdown rules, one behaviour per test, on small inputs."""

from __future__ import annotations

import pytest

from skilltree.roadmaps.document import TopicDoc
from skilltree.roadmaps.importing import (
    ImportLimits,
    ParsedRoadmap,
    RoadmapImportError,
    parse_roadmap,
)


def parse(text: str, limits: ImportLimits | None = None) -> ParsedRoadmap:
    return parse_roadmap(text.encode(), "markdown", limits)


def titles(topics: list[TopicDoc]) -> list[str]:
    return [topic.title for topic in topics]


def test_the_first_h1_is_the_title_and_h2s_are_sections() -> None:
    parsed = parse("# My plan\n\n## HTTP\n\n- Methods\n\n## SQL\n\n- Joins\n")

    assert parsed.document.title == "My plan"
    assert titles(parsed.document.topics) == ["HTTP", "SQL"]
    assert titles(parsed.document.topics[0].children) == ["Methods"]


def test_without_an_h1_a_first_heading_holding_only_headings_is_the_title() -> None:
    parsed = parse("## Checklist\n\n### 1. **Auth**\n\n* [ ] JWT\n\n## Bonus\n\n* [ ] Practice\n")

    assert parsed.document.title == "Checklist"
    assert titles(parsed.document.topics) == ["Auth", "Bonus"]


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("## 🔹 1. Core Backend Fundamentals", "Core Backend Fundamentals"),
        ("### 🔐 1. **Authentication & Authorization**", "Authentication & Authorization"),
        ("## 🧱 0️⃣ COMPUTER SCIENCE FOUNDATIONS", "COMPUTER SCIENCE FOUNDATIONS"),
        ("## 🛡️ 1️⃣1️⃣ SECURITY (EVERY ATTACK)", "SECURITY (EVERY ATTACK)"),
        ("## 🔐 🔟 AUTHENTICATION", "AUTHENTICATION"),
        ("## Learning Checklist 🚀", "Learning Checklist"),
    ],
)
def test_heading_decoration_and_numbering_are_stripped(heading: str, title: str) -> None:
    parsed = parse(f"# R\n\n{heading}\n\n- item\n")

    assert parsed.document.topics[0].title == title


def test_nested_bullets_of_every_kind_become_children() -> None:
    parsed = parse("# R\n\n## S\n\n- a\n  * b\n    + c\n      1. d\n")

    a = parsed.document.topics[0].children[0]
    assert a.title == "a"
    assert a.children[0].title == "b"
    assert a.children[0].children[0].children[0].title == "d"


def test_tab_indented_nesting_and_crlf_line_endings_work() -> None:
    parsed = parse("# R\r\n\r\n## S\r\n\r\n- parent\r\n\t- child\r\n")

    assert parsed.document.topics[0].children[0].children[0].title == "child"


@pytest.mark.parametrize(
    ("marker", "status"),
    [("[ ]", "todo"), ("[x]", "done"), ("[X]", "done"), ("[/]", "in_progress"), ("[-]", "skipped")],
)
def test_task_boxes_set_the_status(marker: str, status: str) -> None:
    parsed = parse(f"# R\n\n## S\n\n- {marker} Caching\n")

    topic = parsed.document.topics[0].children[0]
    assert (topic.title, topic.status) == ("Caching", status)


@pytest.mark.parametrize(
    ("marker", "status"),
    [
        ("[Done]", "done"),
        ("[DONE]", "done"),
        ("[completed]", "done"),
        ("[running]", "in_progress"),
        ("[In progress]", "in_progress"),
        ("[WIP]", "in_progress"),
        ("[skipped]", "skipped"),
        ("[todo]", "todo"),
    ],
)
def test_a_status_word_in_brackets_sets_the_status(marker: str, status: str) -> None:
    parsed = parse(f"# R\n\n## S\n\n- {marker} Caching\n")

    topic = parsed.document.topics[0].children[0]
    assert (topic.title, topic.status, topic.checkbox) == ("Caching", status, True)


@pytest.mark.parametrize(
    "item", ["[OK_OK] Docker", "[1] Joins", "[RFC 9110] Semantics", "[x86] Asm"]
)
def test_other_words_in_brackets_stay_in_the_title(item: str) -> None:
    parsed = parse(f"# R\n\n## S\n\n- {item}\n")

    topic = parsed.document.topics[0].children[0]
    assert (topic.title, topic.status) == (item, None)


def test_an_item_struck_through_is_done_and_loses_its_tildes() -> None:
    parsed = parse("# R\n\n## S\n\n- ~~HTTP basics~~\n- [ ] ~~Kafka~~ (dropped)\n- ~~old~~ new\n")

    topics = parsed.document.topics[0].children
    assert [(t.title, t.status) for t in topics] == [
        ("HTTP basics", "done"),
        ("Kafka (dropped)", "todo"),  # the box says what it is
        ("old new", None),  # only part of it struck: an edit, not a status
    ]


@pytest.mark.parametrize(
    ("emoji", "status"),
    [("✅", "done"), ("✔️", "done"), ("☑️", "done"), ("🚧", "in_progress"), ("⏳", "in_progress")],
)
def test_a_status_emoji_opening_an_item_sets_its_status(emoji: str, status: str) -> None:
    parsed = parse(f"# R\n\n## S\n\n- {emoji} REST design\n- Status codes\n")

    first, second = parsed.document.topics[0].children
    assert (first.title, first.status, first.checkbox) == ("REST design", status, True)
    assert (second.title, second.status) == ("Status codes", None)


def test_a_cross_is_a_topic_not_done_in_a_list_ticked_with_emoji_and_advice_elsewhere() -> None:
    ticked = parse("# R\n\n## S\n\n- ✅ TCP\n- ❌ UDP\n")
    advice = parse("# R\n\n## S\n\n- Hashing\n- ❌ Never store passwords in plain text\n")

    assert [(t.title, t.status) for t in ticked.document.topics[0].children] == [
        ("TCP", "done"),
        ("UDP", "todo"),
    ]
    assert titles(advice.document.topics[0].children) == ["Hashing"]
    assert [text for _, text in advice.skipped] == ["❌ Never store passwords in plain text"]


def test_the_same_emoji_opening_every_item_of_a_list_is_decoration() -> None:
    parsed = parse("# R\n\n## S\n\n- ✅ REST design\n- ✅ Status codes\n- ✅ Caching\n")

    topics = parsed.document.topics[0].children
    assert [(t.title, t.status) for t in topics] == [
        ("REST design", None),
        ("Status codes", None),
        ("Caching", None),
    ]


@pytest.mark.parametrize(
    ("keyword", "status"),
    [
        ("DONE", "done"),
        ("TODO", "todo"),
        ("LATER", "todo"),
        ("DOING", "in_progress"),
        ("NOW", "in_progress"),
        ("CANCELED", "skipped"),
        ("CANCELLED", "skipped"),
    ],
)
def test_an_outliners_task_keyword_sets_the_status(keyword: str, status: str) -> None:
    parsed = parse(f"# R\n\n## S\n\n- {keyword} Learn HTTP\n- DONE Read RFC 9110\n")

    topic = parsed.document.topics[0].children[0]
    assert (topic.title, topic.status, topic.checkbox) == ("Learn HTTP", status, True)


def test_a_keyword_opening_only_one_item_of_its_list_is_part_of_the_title() -> None:
    parsed = parse("# R\n\n## Ideas\n\n- TODO app in React\n- A URL shortener\n")

    topics = parsed.document.topics[0].children
    assert [(t.title, t.status) for t in topics] == [
        ("TODO app in React", None),
        ("A URL shortener", None),
    ]


def test_a_keyword_not_in_capitals_is_part_of_the_title() -> None:
    parsed = parse("# R\n\n## S\n\n- Done right: idempotent retries\n- Now and later\n")

    topics = parsed.document.topics[0].children
    assert [(t.title, t.status) for t in topics] == [
        ("Done right: idempotent retries", None),
        ("Now and later", None),
    ]


def test_a_line_break_tag_in_an_item_separates_its_words() -> None:
    parsed = parse("# R\n\n## S\n\n- NoSQL<br>document stores\n- SQL <!-- in March -->\n")

    assert titles(parsed.document.topics[0].children) == ["NoSQL document stores", "SQL"]


def test_bold_and_italic_markers_are_removed_from_titles() -> None:
    parsed = parse("# R\n\n## S\n\n- **Repository** _Pattern_\n")

    assert parsed.document.topics[0].children[0].title == "Repository Pattern"


@pytest.mark.parametrize(
    ("item", "title", "summary"),
    [
        (
            "**Repository Pattern** - Data access abstraction layer",
            "Repository Pattern",
            "Data access abstraction layer",
        ),
        (
            "**TTL (Time to Live)** — cache expiry strategies",
            "TTL (Time to Live)",
            "cache expiry strategies",
        ),
        ("HTTP/HTTPS → methods, status codes", "HTTP/HTTPS", "methods, status codes"),
        ("Client–Server model (how requests work)", "Client–Server model (how requests work)", ""),
        ("Normal forms (1NF → 5NF)", "Normal forms (1NF → 5NF)", ""),
        (
            "**Layered Architecture** - Clean separation ✅ **(Completed: layers)**",
            "Layered Architecture",
            "Clean separation ✅ (Completed: layers)",
        ),
    ],
)
def test_title_and_description_are_split_at_a_spaced_separator(
    item: str, title: str, summary: str
) -> None:
    topic = parse(f"# R\n\n## S\n\n- {item}\n").document.topics[0].children[0]

    assert (topic.title, topic.summary) == (title, summary)


def test_a_bold_label_ending_in_a_colon_groups_the_list_after_it() -> None:
    parsed = parse("# R\n\n## Databases\n\n**SQL (Relational):**\n- PostgreSQL\n- Joins\n")

    group = parsed.document.topics[0].children[0]
    assert group.title == "SQL (Relational)"
    assert titles(group.children) == ["PostgreSQL", "Joins"]
    assert [item.title for item in parsed.items] == ["PostgreSQL", "Joins"]


def test_plain_line_sections_take_their_paragraphs_as_items() -> None:
    parsed = parse("# Notes\n1. Routing\n\nURL routing\n\nREST endpoints\n\n2. Caching\n\nRedis\n")

    assert titles(parsed.document.topics) == ["Routing", "Caching"]
    assert titles(parsed.document.topics[0].children) == ["URL routing", "REST endpoints"]


def test_headings_inside_list_items_are_titles() -> None:
    parsed = parse("# R\n\n## S\n\n- ## Big item\n  - child\n")

    item = parsed.document.topics[0].children[0]
    assert (item.title, titles(item.children)) == ("Big item", ["child"])


def test_prose_paragraphs_and_rules_are_skipped_not_topics() -> None:
    parsed = parse(
        "Great question! Here is a list.\n\n---\n\n# R\n\n## S\n\n- item\n\nHope this helps!\n"
    )

    assert [text for _, text in parsed.skipped] == [
        "Great question! Here is a list.",
        "Hope this helps!",
    ]
    assert len(parsed.items) == 1


def test_a_paragraph_under_the_title_is_the_description() -> None:
    parsed = parse("# R\n\nWhat this roadmap is for.\n\n## S\n\n- item\n")

    assert parsed.document.description == "What this roadmap is for."


def test_items_opening_with_a_callout_emoji_are_prose_and_empty_sections_vanish() -> None:
    parsed = parse(
        "# R\n\n## S\n\n- item\n\n# ✅ VERDICT\n\n"
        "- 👉 **This list is complete**\n- 🔥 Ask me more\n"
    )

    assert titles(parsed.document.topics) == ["S"]
    assert [text for _, text in parsed.skipped] == ["👉 This list is complete", "🔥 Ask me more"]


def test_duplicates_within_a_section_are_merged_with_a_warning() -> None:
    parsed = parse("# R\n\n## S\n\n- Caching\n  - Redis\n- caching\n  - Memcached\n")

    section = parsed.document.topics[0]
    assert titles(section.children) == ["Caching"]
    assert titles(section.children[0].children) == ["Redis", "Memcached"]
    assert parsed.warnings == ["line 7: duplicate 'caching' merged into line 5"]


def test_duplicates_in_different_sections_are_kept_with_distinct_slugs() -> None:
    parsed = parse("# R\n\n## SQL\n\n- Indexing\n\n## Search\n\n- Indexing\n")

    slugs = [section.children[0].slug for section in parsed.document.topics]
    assert slugs == ["indexing", "search-indexing"]


def test_boxes_inside_fenced_code_are_ignored() -> None:
    parsed = parse("# R\n\n## S\n\n- real\n\n```md\n- [ ] not a topic\n```\n")

    assert [item.title for item in parsed.items] == ["real"]


def test_typed_links_become_typed_resources_and_leave_the_title() -> None:
    text = "# R\n\n## S\n\n- ETags [@article@Caching guide](https://example.org/etags) [spec](https://www.rfc-editor.org/rfc/rfc9110)\n"

    topic = parse(text).document.topics[0].children[0]

    assert topic.title == "ETags spec"
    assert [(r.type, r.title, r.url) for r in topic.resources] == [
        ("article", "Caching guide", "https://example.org/etags"),
        ("link", "spec", "https://www.rfc-editor.org/rfc/rfc9110"),
    ]


def test_links_other_than_http_are_not_kept() -> None:
    topic = (
        parse("# R\n\n## S\n\n- Files [local](file:///etc/passwd)\n").document.topics[0].children[0]
    )

    assert topic.resources == []


def test_topics_nested_deeper_than_the_limit_are_refused_with_the_line() -> None:
    text = "# R\n\n## S\n\n- a\n  - b\n    - c\n"

    with pytest.raises(RoadmapImportError) as raised:
        parse(text, ImportLimits(max_depth=3))

    assert raised.value.line == 7
    assert "line 7" in raised.value.detail


def test_more_topics_than_the_limit_are_refused_with_the_line() -> None:
    text = "# R\n\n## S\n\n" + "".join(f"- item {n}\n" for n in range(10))

    with pytest.raises(RoadmapImportError) as raised:
        parse(text, ImportLimits(max_topics=5))

    assert raised.value.line == 9


def test_far_more_list_lines_than_topics_allowed_are_refused_before_parsing() -> None:
    # Duplicates merge, so they are no topics; yet each costs the parser as much as one.
    within = "# R\n\n## S\n\n" + "- same\n" * 20
    beyond = "# R\n\n## S\n\n" + "- same\n" * 21

    parsed = parse(within, ImportLimits(max_topics=5))
    with pytest.raises(RoadmapImportError) as raised:
        parse(beyond, ImportLimits(max_topics=5))

    assert titles(parsed.document.topics[0].children) == ["same"]
    assert raised.value.line == 25
    assert "more than 20 list items or table rows" in raised.value.detail


def test_a_document_without_topics_is_refused() -> None:
    with pytest.raises(RoadmapImportError, match="no topics found"):
        parse("# Title\n\nOnly prose here.\n")


def test_the_title_falls_back_to_the_file_name() -> None:
    parsed = parse_roadmap(b"- one\n- two\n", "markdown", source_name="my_study-plan.md")

    assert parsed.document.title == "my study plan"
    assert parsed.document.slug == "my-study-plan"
