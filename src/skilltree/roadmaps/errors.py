"""Errors of the roadmaps domain, each with its HTTP status and problem type."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, DomainError, NotFound


class RoadmapNotFound(NotFound):
    type_slug = "roadmap-not-found"
    title = "Roadmap not found"

    def __init__(self, slug: str) -> None:
        super().__init__(f"There is no roadmap {slug!r}.", roadmap=slug)


class TopicNotFound(NotFound):
    type_slug = "topic-not-found"
    title = "Topic not found"

    def __init__(self, roadmap: str, topic: str) -> None:
        super().__init__(
            f"Roadmap {roadmap!r} has no topic {topic!r}.", roadmap=roadmap, topic=topic
        )


class BuiltinRoadmapProtected(Conflict):
    type_slug = "builtin-roadmap-protected"
    title = "Built-in roadmap cannot be replaced"

    def __init__(self, slug: str) -> None:
        super().__init__(
            f"{slug!r} is a built-in roadmap; import under another slug (?slug=...).", roadmap=slug
        )


class RoadmapSlugTaken(Conflict):
    type_slug = "roadmap-slug-taken"
    title = "Roadmap slug taken"

    def __init__(self, slug: str) -> None:
        super().__init__(
            f"The slug {slug!r} is taken; import under another (?slug=...).", roadmap=slug
        )


class RoadmapNotEditable(DomainError):
    status = 403
    type_slug = "roadmap-not-editable"
    title = "Not allowed to change this roadmap"

    def __init__(self, slug: str) -> None:
        super().__init__(
            f"Only the owner of {slug!r} (or its organisation's owners and mentors) "
            "may re-import it.",
            roadmap=slug,
        )


class ConcurrentImport(Conflict):
    type_slug = "concurrent-import"
    title = "Roadmap changed concurrently"

    def __init__(self, slug: str) -> None:
        super().__init__(f"Another import of {slug!r} finished first; retry.", roadmap=slug)
