"""Stable, unique slugs for every topic: what re-imports match on, so they must be deterministic."""

from __future__ import annotations

from skilltree.identity import MAX_SLUG_LENGTH
from skilltree.roadmaps.document import RoadmapDoc, TopicDoc, iter_topics
from skilltree.roadmaps.importing.errors import RoadmapImportError
from skilltree.roadmaps.importing.text import slugify


def assign_slugs(document: RoadmapDoc) -> RoadmapDoc:
    """Fill in missing slugs; explicit ones are kept and must be unique.

    A generated slug is slugify(title); if taken, it is prefixed with the parent's slug
    ("databases-indexing"), then suffixed with -2, -3... Explicit slugs are reserved first, so a
    generated one never steals them, and a topic's slug depends only on its own title and
    parent, so editing one item does not rename its neighbours.
    """
    if document.slug is None:
        document.slug = slugify(document.title)
    used: set[str] = set()
    for topic, _ in iter_topics(document.topics):
        if topic.slug is not None:
            if topic.slug in used:
                raise RoadmapImportError(f"duplicate topic slug {topic.slug!r}", line=topic.line)
            used.add(topic.slug)
    _assign(document.topics, parent_slug=None, used=used)
    return document


def _assign(topics: list[TopicDoc], parent_slug: str | None, used: set[str]) -> None:
    for topic in topics:
        if topic.slug is None:
            topic.slug = _unique(slugify(topic.title), parent_slug, used)
        _assign(topic.children, topic.slug, used)


def _unique(base: str, parent_slug: str | None, used: set[str]) -> str:
    candidates = [base]
    if parent_slug:
        candidates.append(_trim(f"{parent_slug}-{base}"))
    for candidate in candidates:
        if candidate not in used:
            used.add(candidate)
            return candidate
    number = 2
    while (candidate := _trim(f"{candidates[-1]}", suffix=f"-{number}")) in used:
        number += 1
    used.add(candidate)
    return candidate


def _trim(slug: str, suffix: str = "") -> str:
    room = MAX_SLUG_LENGTH - len(suffix)
    return slug[:room].rstrip("-") + suffix
