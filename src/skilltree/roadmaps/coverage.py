"""Proof that the built-in roadmap covers its sources: every seed item lands in exactly one topic.

Each seed file is parsed with the same markdown importer users get; every item is matched, by
normalised title, against the topics' titles and aliases. Lines that are conversation rather
than checklist items are listed, with a reason, in excluded_seed_lines.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel

from skilltree.roadmaps.builtin import EXCLUDED_FILE, load_builtin
from skilltree.roadmaps.document import iter_topics
from skilltree.roadmaps.importing import ImportLimits, normalize_key, parse_roadmap


class ExcludedLine(BaseModel):
    seed: str
    text: str
    reason: str


@dataclass(frozen=True)
class CoverageRow:
    seed: str
    line: int
    item: str
    topic: str | None  # the topic slug; None when unmapped


@dataclass(frozen=True)
class CoverageReport:
    rows: list[CoverageRow]
    excluded: list[tuple[str, int, str, str]]  # seed, line, text, reason
    ambiguous: dict[str, list[str]]  # normalised key -> topic slugs claiming it

    @property
    def unmapped(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.topic is None]

    @property
    def ok(self) -> bool:
        return not self.unmapped and not self.ambiguous


def load_excluded() -> list[ExcludedLine]:
    data = yaml.safe_load(EXCLUDED_FILE.read_text(encoding="utf-8")) or []
    return [ExcludedLine.model_validate(entry) for entry in data]


def check_coverage(seed_paths: list[Path]) -> CoverageReport:
    claims = _claims()
    excluded = {(e.seed, normalize_key(e.text)): e.reason for e in load_excluded()}
    rows: list[CoverageRow] = []
    excluded_rows: list[tuple[str, int, str, str]] = []
    for path in seed_paths:
        seed = path.name[:3]
        parsed = parse_roadmap(path.read_bytes(), "markdown", ImportLimits(), source_name=path.name)
        for item in parsed.items:
            key = normalize_key(item.title)
            reason = excluded.get((seed, key))
            if reason is not None:
                excluded_rows.append((seed, item.line, item.title, reason))
            else:
                slugs = claims.get(key, [])
                rows.append(CoverageRow(seed, item.line, item.title, slugs[0] if slugs else None))
        for line, text in parsed.skipped:
            reason = excluded.get((seed, normalize_key(text)), "skipped by the importer as prose")
            excluded_rows.append((seed, line, text, reason))
    # An item is covered "exactly once" only if a single topic claims it.
    ambiguous = {
        normalize_key(row.item): claims[normalize_key(row.item)]
        for row in rows
        if len(claims.get(normalize_key(row.item), [])) > 1
    }
    return CoverageReport(rows, excluded_rows, ambiguous)


def _claims() -> dict[str, list[str]]:
    """Normalised title or alias -> the slugs of the topics that carry it, in document order."""
    claims: dict[str, list[str]] = {}
    for topic, _depth in iter_topics(load_builtin().document.topics):
        assert topic.slug is not None
        for name in (topic.title, *topic.aliases):
            slugs = claims.setdefault(normalize_key(name), [])
            if topic.slug not in slugs:
                slugs.append(topic.slug)
    return claims
