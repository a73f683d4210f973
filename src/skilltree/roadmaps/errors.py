"""Errors of the roadmaps domain, each with its HTTP status and problem type."""

from __future__ import annotations

from skilltree.platform.errors import Conflict, DomainError, NotFound, UnprocessableContent


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
            f"Only the owner of {slug!r} (or its organisation's owners and mentors) may change it.",
            roadmap=slug,
        )


class ConcurrentImport(Conflict):
    type_slug = "concurrent-import"
    title = "Roadmap changed concurrently"

    def __init__(self, slug: str) -> None:
        super().__init__(f"Another import of {slug!r} finished first; retry.", roadmap=slug)


class TopicSlugTaken(Conflict):
    type_slug = "topic-slug-taken"
    title = "Topic slug taken"

    def __init__(self, roadmap: str, topic: str) -> None:
        super().__init__(
            f"Roadmap {roadmap!r} already has a topic {topic!r}; choose another slug.",
            roadmap=roadmap,
            topic=topic,
        )


class InvalidMove(UnprocessableContent):
    type_slug = "invalid-topic-move"
    title = "Topic cannot move there"


class RevisionNotFound(NotFound):
    type_slug = "revision-not-found"
    title = "Revision not found"

    def __init__(self, roadmap: str, number: int) -> None:
        super().__init__(
            f"Roadmap {roadmap!r} has no revision {number}.", roadmap=roadmap, revision=number
        )


class NothingToPublish(Conflict):
    type_slug = "revision-unchanged"
    title = "Nothing changed since the last revision"

    def __init__(self, roadmap: str, number: int) -> None:
        super().__init__(
            f"Roadmap {roadmap!r} is unchanged since revision {number}.",
            roadmap=roadmap,
            revision=number,
        )
