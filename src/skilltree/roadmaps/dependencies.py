"""Who is asking, for the roadmap routes: the viewer (anonymous or signed in, with their
organisation roles), the writer, and the shape of the slugs in their paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from skilltree.accounts.dependencies import MaybePrincipal, require_scope
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Principal, Scope, Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.state import DbSession

RoadmapWriter = Annotated[Principal, Depends(require_scope(Scope.ROADMAPS_WRITE))]

SlugPath = Annotated[
    str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH, examples=["backend"])
]
TopicSlugPath = Annotated[
    str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH, examples=["idempotency-keys"])
]


async def current_viewer(current: MaybePrincipal, session: DbSession) -> Viewer:
    """Anonymous visitors see public roadmaps; users also their own and their organisations'."""
    return await orgs.viewer_of(session, current)


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]


async def writer_viewer(session: DbSession, writer: RoadmapWriter) -> Viewer:
    """The writer with their organisation roles (what they may edit)."""
    return await orgs.viewer_of(session, writer)


WriterViewer = Annotated[Viewer, Depends(writer_viewer)]
