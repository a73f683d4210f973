"""The built-in Backend Engineering roadmap: a reviewable YAML file plus its concept map.

backend.yaml holds the topics (written from the seed checklists in seeds/); implemented_in.yaml
maps topic slugs to the module, endpoint and test of this codebase that implement them. The two
are kept apart so that editing prose never touches the code map, and vice versa.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import TypeAdapter

from skilltree.roadmaps.document import ReferenceDoc, TopicDoc, iter_topics
from skilltree.roadmaps.importing import ImportLimits, ParsedRoadmap, parse_roadmap

BUILTIN_DIR = Path(__file__).parent
ROADMAP_FILE = BUILTIN_DIR / "backend.yaml"
REFERENCES_FILE = BUILTIN_DIR / "implemented_in.yaml"
EXCLUDED_FILE = BUILTIN_DIR / "excluded_seed_lines.yaml"
SEEDS_DIR = BUILTIN_DIR / "seeds"
BUILTIN_SLUG = "backend"
# The built-in file is trusted and larger than a user upload may be.
BUILTIN_LIMITS = ImportLimits(max_bytes=16 * 1024 * 1024, max_depth=8, max_topics=100_000)

_References = TypeAdapter(dict[str, list[ReferenceDoc]])


def load_references() -> dict[str, list[ReferenceDoc]]:
    data = yaml.safe_load(REFERENCES_FILE.read_text(encoding="utf-8")) or {}
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
    return parsed


def seed_files() -> list[Path]:
    return sorted(SEEDS_DIR.glob("*.txt"))
