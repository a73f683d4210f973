"""Whether skilltree implements each leaf of the built-in roadmap.

A leaf is `implemented` when implemented_in.yaml gives it references (which
tests/roadmaps/test_concept_map.py resolves), `theory` when topic_status.yaml says why it cannot
be shown in a web service's code, and `planned` when it could be and is not yet. References win:
a planned topic that gains references is implemented without touching topic_status.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from skilltree.roadmaps.document import TopicDoc, iter_topics

STATUS_FILE = Path(__file__).parent / "topic_status.yaml"
ImplementationStatus = Literal["implemented", "theory", "planned"]


@dataclass(frozen=True)
class Implementation:
    status: ImplementationStatus
    reason: str = ""  # why a theory topic cannot be shown in code


@dataclass(frozen=True)
class StatusFile:
    theory: dict[str, str]
    planned: frozenset[str]


@dataclass(frozen=True)
class SectionCoverage:
    slug: str
    title: str
    implemented: int
    planned: int
    theory: int

    @property
    def share(self) -> float:
        """Implemented leaves over the leaves that can be shown in code (not theory)."""
        codeable = self.implemented + self.planned
        return self.implemented / codeable if codeable else 1.0


def load_status_file(path: Path = STATUS_FILE) -> StatusFile:
    # PyYAML loads with the first status asked for, not in every worker (decision 0062).
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    theory = {str(slug): str(reason) for slug, reason in (data.get("theory") or {}).items()}
    planned = frozenset(str(slug) for slug in data.get("planned") or [])
    both = sorted(planned & theory.keys())
    if both:
        raise ValueError(f"{path.name}: {', '.join(both)} both planned and theory")
    return StatusFile(theory, planned)


@lru_cache(maxsize=1)
def _default_file() -> StatusFile:
    return load_status_file()


def implementation_of(
    slug: str, implemented: bool, statuses: StatusFile | None = None
) -> Implementation | None:
    """The status of a built-in leaf; None for a slug the status file does not know."""
    if implemented:
        return Implementation("implemented")
    statuses = statuses or _default_file()
    if slug in statuses.theory:
        return Implementation("theory", statuses.theory[slug])
    if slug in statuses.planned:
        return Implementation("planned")
    return None


def leaves(topics: list[TopicDoc]) -> list[TopicDoc]:
    return [topic for topic, _ in iter_topics(topics) if not topic.children]


def coverage_by_section(
    sections: list[TopicDoc], statuses: StatusFile | None = None
) -> list[SectionCoverage]:
    """Per section: how many leaves are implemented, planned and theory."""
    rows = []
    for section in sections:
        counts = {"implemented": 0, "planned": 0, "theory": 0}
        for leaf in leaves(section.children) or [section]:
            found = implementation_of(leaf.slug or "", bool(leaf.implemented_in), statuses)
            if found is not None:
                counts[found.status] += 1
        rows.append(SectionCoverage(section.slug or "", section.title, **counts))
    return rows
