"""What an import produces, and the limits it runs under."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from skilltree.roadmaps.document import RoadmapDoc

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
