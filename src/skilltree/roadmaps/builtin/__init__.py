"""The built-in Backend Engineering roadmap: a reviewable YAML file plus its concept map.

backend.yaml holds the topics (written from the seed checklists in seeds/); implemented_in.yaml
maps topic slugs to the module, endpoint and test of this codebase that implement them. The two
are kept apart so that editing prose never touches the code map, and vice versa.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from skilltree.roadmaps.document import ReferenceDoc, ResourceDoc, TopicDoc, iter_topics
from skilltree.roadmaps.importing import ImportLimits, ParsedRoadmap, parse_roadmap

BUILTIN_DIR = Path(__file__).parent
ROADMAP_FILE = BUILTIN_DIR / "backend.yaml"
REFERENCES_FILE = BUILTIN_DIR / "implemented_in.yaml"
RESOURCES_FILE = BUILTIN_DIR / "resources.yaml"
# Hours to learn a leaf that backend.yaml gives no estimate of, by its level: a first reading
# and a small exercise for a beginner topic, a day's study for an advanced one. A topic's own
# estimate_hours in backend.yaml takes precedence.
DEFAULT_ESTIMATE_HOURS = {"beginner": 2.0, "intermediate": 4.0, "advanced": 8.0}
EXCLUDED_FILE = BUILTIN_DIR / "excluded_seed_lines.yaml"
SEEDS_DIR = BUILTIN_DIR / "seeds"
BUILTIN_SLUG = "backend"
# The built-in file is trusted and larger than a user upload may be.
BUILTIN_LIMITS = ImportLimits(max_bytes=16 * 1024 * 1024, max_depth=8, max_topics=100_000)

_References = TypeAdapter(dict[str, list[ReferenceDoc]])
_Resources = TypeAdapter(dict[str, list[ResourceDoc]])


def load_references(path: Path = REFERENCES_FILE) -> dict[str, list[ReferenceDoc]]:
    data = _read_yaml(path)
    return _References.validate_python(data)


def load_builtin() -> ParsedRoadmap:
    """The built-in roadmap, parsed and with every topic's `implemented_in` attached."""
    parsed = parse_roadmap(
        ROADMAP_FILE.read_bytes(), "yaml", BUILTIN_LIMITS, source_name=ROADMAP_FILE.name
    )
    topics: dict[str, TopicDoc] = {
        topic.slug: topic for topic, _ in iter_topics(parsed.document.topics) if topic.slug
    }
    for slug, references in load_references().items():
        if slug not in topics:
            raise ValueError(f"{REFERENCES_FILE.name}: no topic {slug!r} in {ROADMAP_FILE.name}")
        topics[slug].implemented_in = references
    for slug, resources in load_resources().items():
        if slug not in topics:
            raise ValueError(f"{RESOURCES_FILE.name}: no topic {slug!r} in {ROADMAP_FILE.name}")
        known = {resource.url for resource in topics[slug].resources}
        topics[slug].resources += [r for r in resources if r.url not in known]
    for topic in topics.values():
        if not topic.children and topic.estimate_hours is None:
            topic.estimate_hours = DEFAULT_ESTIMATE_HOURS[topic.level or "intermediate"]
    return parsed


def load_resources(path: Path | None = None) -> dict[str, list[ResourceDoc]]:
    path = path or RESOURCES_FILE
    data = _read_yaml(path)
    return _Resources.validate_python(data)


def _read_yaml(path: Path) -> Any:
    # PyYAML loads with the first of these files read, not in every worker (decision 0062).
    from skilltree.roadmaps.builtin import strict_yaml

    return strict_yaml.load(path.read_text(encoding="utf-8"))


def seed_files() -> list[Path]:
    return sorted(SEEDS_DIR.glob("*.txt"))
