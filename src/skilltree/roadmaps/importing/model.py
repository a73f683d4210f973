"""What an import produces, and the limits it runs under."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from skilltree.roadmaps.document import RoadmapDoc
from skilltree.roadmaps.importing.errors import RoadmapImportError

ImportFormat = Literal["markdown", "json", "yaml"]


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int = 1_048_576
    max_depth: int = 8  # nesting depth of topics; sections are depth 1
    max_topics: int = 5_000


@dataclass(frozen=True)
class SourceItem:
    """One checklist item as written in the source (not a heading, not a group label)."""

    line: int  # 1-based; 0 where the format has no lines (JSON, YAML)
    title: str


@dataclass
class ParsedRoadmap:
    document: RoadmapDoc  # slugs assigned on the roadmap and every topic
    items: list[SourceItem] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # prose lines, not topics
    repaired_encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


# A line opening a list item or a table row (or a thematic break, which looks the same here):
# what parsing a checklist spends its time on, duplicates as much as topics (in YAML, a list
# entry).
_ITEM_LINE = re.compile(r"^[ \t]*(?:[-*+]|\d{1,9}[.)]|\|)", re.MULTILINE)
# How many such lines a document may hold per topic it may hold: in markdown, duplicates,
# notes and rules leave room; in YAML, a topic's resources and tags are list entries too. A
# megabyte of one-character items (two hundred thousand lines, tens of seconds of parsing)
# is refused.
ITEM_LINES_PER_TOPIC = {"markdown": 4, "yaml": 8}
ITEM_LINES_NAMED = {"markdown": "list items or table rows", "yaml": "list entries"}


def check_item_lines(text: str, limits: ImportLimits, fmt: Literal["markdown", "yaml"]) -> None:
    """Refuse, before parsing, a document with far more item lines than it may hold topics."""
    most = limits.max_topics * ITEM_LINES_PER_TOPIC[fmt]
    for count, found in enumerate(_ITEM_LINE.finditer(text), start=1):
        if count > most:
            line = text.count("\n", 0, found.start()) + 1
            raise RoadmapImportError(
                f"line {line}: more than {most} {ITEM_LINES_NAMED[fmt]} (a roadmap holds at "
                f"most {limits.max_topics} topics)",
                line=line,
            )
