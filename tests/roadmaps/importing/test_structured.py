"""JSON and YAML documents: validated strictly, errors with lines or field paths."""

from __future__ import annotations

import orjson
import pytest

from bench.import_parse import alias_bomb
from skilltree.platform.errors import UnsupportedMediaType
from skilltree.roadmaps.importing import (
    ImportLimits,
    RoadmapImportError,
    detect_format,
    parse_roadmap,
)

DOCUMENT = {
    "title": "Plan",
    "topics": [{"title": "HTTP", "children": [{"title": "ETags", "level": "intermediate"}]}],
}


def test_json_document_is_parsed_and_slugged() -> None:
    parsed = parse_roadmap(orjson.dumps(DOCUMENT), "json")

    assert parsed.document.slug == "plan"
    assert parsed.document.topics[0].children[0].slug == "etags"


def test_yaml_document_is_parsed() -> None:
    parsed = parse_roadmap(
        b"title: Plan\ntopics:\n  - title: HTTP\n    children:\n      - title: ETags\n", "yaml"
    )

    assert parsed.document.topics[0].children[0].title == "ETags"


def test_the_json_export_shape_round_trips() -> None:
    parsed = parse_roadmap(orjson.dumps(DOCUMENT), "json")
    exported = orjson.dumps(parsed.document.model_dump(mode="json", exclude_defaults=True))

    assert parse_roadmap(exported, "json").document == parsed.document


def test_json_syntax_errors_name_the_line() -> None:
    with pytest.raises(RoadmapImportError) as raised:
        parse_roadmap(b'{\n  "title": "x",\n  "topics": [,]\n}', "json")

    assert raised.value.line == 3


def test_yaml_syntax_errors_name_the_line() -> None:
    with pytest.raises(RoadmapImportError) as raised:
        parse_roadmap(b"title: x\ntopics:\n  - title: [unclosed\n", "yaml")

    assert raised.value.line is not None
    assert raised.value.line >= 3


def test_yaml_tags_that_build_python_objects_are_refused() -> None:
    with pytest.raises(RoadmapImportError):
        parse_roadmap(b"title: !!python/object/apply:os.system ['true']\ntopics: []\n", "yaml")


def test_schema_errors_list_the_field_paths() -> None:
    bad = {"title": "x", "topics": [{"title": "ok"}, {"children": [{"title": ""}]}], "extra": 1}

    with pytest.raises(RoadmapImportError) as raised:
        parse_roadmap(orjson.dumps(bad), "json")

    detail = raised.value.detail
    assert "topics[1].title" in detail
    assert "topics[1].children[0].title" in detail
    assert "extra" in detail


def test_duplicate_explicit_slugs_are_refused() -> None:
    doc = {"title": "x", "topics": [{"slug": "a", "title": "A"}, {"slug": "a", "title": "B"}]}

    with pytest.raises(RoadmapImportError, match="duplicate topic slug 'a'"):
        parse_roadmap(orjson.dumps(doc), "json")


def test_structured_documents_respect_the_depth_cap() -> None:
    doc = {
        "title": "x",
        "topics": [{"title": "a", "children": [{"title": "b", "children": [{"title": "c"}]}]}],
    }

    with pytest.raises(RoadmapImportError, match="deeper than 2"):
        parse_roadmap(orjson.dumps(doc), "json", ImportLimits(max_depth=2))


def test_a_yaml_document_whose_aliases_stand_for_too_many_values_is_refused() -> None:
    bomb = alias_bomb(9)  # 387 million topics in 2 kB: refused before anything walks them

    with pytest.raises(RoadmapImportError) as refused:
        parse_roadmap(bomb, "yaml", ImportLimits(max_topics=100))

    assert len(bomb) < 2_500
    assert "more than 5000 values" in refused.value.detail


def test_far_more_yaml_list_entries_than_topics_allowed_are_refused_before_parsing() -> None:
    entries = b"title: R\ntopics:\n" + b"  - title: same\n" * 41

    with pytest.raises(RoadmapImportError) as refused:
        parse_roadmap(entries, "yaml", ImportLimits(max_topics=5))

    assert refused.value.line == 43
    assert "more than 40 list entries" in refused.value.detail


def test_an_alias_that_repeats_a_little_is_expanded() -> None:
    shared = b"""title: Plan
topics:
  - title: HTTP
    resources: &rfcs [{title: RFC 9110, url: "https://www.rfc-editor.org/rfc/rfc9110"}]
  - title: Caching
    resources: *rfcs
"""
    parsed = parse_roadmap(shared, "yaml")

    assert [len(topic.resources) for topic in parsed.document.topics] == [1, 1]


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        (None, "text/markdown; charset=utf-8", "markdown"),
        (None, "application/json", "json"),
        (None, "application/yaml", "yaml"),
        ("plan.yml", "application/octet-stream", "yaml"),
        ("plan.md", None, "markdown"),
        ("notes.txt", "", "markdown"),
    ],
)
def test_format_is_detected_from_media_type_then_extension(
    filename: str | None, content_type: str | None, expected: str
) -> None:
    assert detect_format(filename, content_type) == expected


def test_an_unknown_format_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match="image/png"):
        detect_format("x.png", "image/png")
