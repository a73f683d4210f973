"""Importing roadmaps: markdown checklists (as people really write them), JSON and YAML.

    parsed = parse_roadmap(data, "markdown", ImportLimits())
    parsed.document   # a RoadmapDoc with every slug assigned
    parsed.items      # every checklist item with its line (for coverage checks)
    parsed.skipped    # prose lines that were deliberately not made topics

Bad input raises RoadmapImportError (422, naming the line) or RoadmapTooLarge (413).

The parsers (markdown-it with its plugins, PyYAML) load with the first upload to parse, not in
every worker that only needs this package's limits and errors (decision 0062).
"""

from __future__ import annotations

from skilltree.platform.errors import UnsupportedMediaType
from skilltree.roadmaps.document import iter_topics
from skilltree.roadmaps.importing.encoding import decode
from skilltree.roadmaps.importing.errors import RoadmapImportError, RoadmapTooLarge
from skilltree.roadmaps.importing.model import ImportFormat, ImportLimits, ParsedRoadmap, SourceItem
from skilltree.roadmaps.importing.slugs import assign_slugs
from skilltree.roadmaps.importing.text import normalize_key, slugify

__all__ = [
    "ImportFormat",
    "ImportLimits",
    "ParsedRoadmap",
    "RoadmapImportError",
    "RoadmapTooLarge",
    "SourceItem",
    "detect_format",
    "normalize_key",
    "parse_roadmap",
    "slugify",
]

_BY_EXTENSION: dict[str, ImportFormat] = {
    "md": "markdown",
    "markdown": "markdown",
    "txt": "markdown",
    "json": "json",
    "yaml": "yaml",
    "yml": "yaml",
}
_BY_MEDIA_TYPE: dict[str, ImportFormat] = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/plain": "markdown",
    "application/json": "json",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "text/x-yaml": "yaml",
}
_GENERIC_MEDIA_TYPES = {"", "application/octet-stream"}


def detect_format(filename: str | None, content_type: str | None) -> ImportFormat:
    """The format named by the media type, else by the file extension; 415 if neither fits."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in _BY_MEDIA_TYPE:
        return _BY_MEDIA_TYPE[media_type]
    extension = filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else ""
    if media_type in _GENERIC_MEDIA_TYPES and extension in _BY_EXTENSION:
        return _BY_EXTENSION[extension]
    given = media_type or (f".{extension}" if extension else "nothing")
    raise UnsupportedMediaType(
        f"Cannot import {given}: send text/markdown, application/json or application/yaml "
        "(or a .md, .json or .yaml file).",
        supported=sorted(set(_BY_MEDIA_TYPE)),
    )


def parse_roadmap(
    data: bytes,
    fmt: ImportFormat,
    limits: ImportLimits | None = None,
    *,
    source_name: str | None = None,
) -> ParsedRoadmap:
    """Parse an upload into a roadmap document; raises before doing any work on oversized input."""
    limits = limits or ImportLimits()
    if len(data) > limits.max_bytes:
        raise RoadmapTooLarge(
            f"The file is {len(data)} bytes; the import limit is {limits.max_bytes} bytes.",
            limit=limits.max_bytes,
        )
    decoded = decode(data)
    if fmt == "markdown":
        from skilltree.roadmaps.importing.markdown import parse_markdown

        result = parse_markdown(decoded.text, limits, source_name)
        parsed = ParsedRoadmap(
            document=result.document,
            items=result.items,
            skipped=result.skipped,
            warnings=result.warnings,
        )
    else:
        from skilltree.roadmaps.importing.structured import parse_json, parse_yaml

        parse = parse_json if fmt == "json" else parse_yaml
        document = parse(decoded.text, limits)
        _check_structured_limits(document.topics, limits)
        items = [SourceItem(line=0, title=t.title) for t, _ in iter_topics(document.topics)]
        parsed = ParsedRoadmap(document=document, items=items)
    parsed.repaired_encoding = decoded.repaired_encoding
    assign_slugs(parsed.document)
    return parsed


def _check_structured_limits(topics: list, limits: ImportLimits) -> None:  # type: ignore[type-arg]
    flat = iter_topics(topics)
    if len(flat) > limits.max_topics:
        raise RoadmapImportError(f"more than {limits.max_topics} topics")
    deepest = max((depth for _, depth in flat), default=0)
    if deepest > limits.max_depth:
        raise RoadmapImportError(f"topics nested deeper than {limits.max_depth} levels")
