"""HTTP route of search: GET /v1/search."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from skilltree.accounts.dependencies import MaybePrincipal
from skilltree.flags.dependencies import Flags
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN, Scope, Viewer
from skilltree.orgs import service as orgs
from skilltree.platform.http import conditional
from skilltree.platform.http.pagination import CursorParam, Cursors, LimitParam, page_links
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.pagination import (
    DEFAULT_PAGE_SIZE,
    InvalidCursor,
    Page,
    Position,
    decode_position,
)
from skilltree.platform.state import DbSession
from skilltree.search import service
from skilltree.search.query import Mode
from skilltree.search.schemas import Kind, SearchHitOut, SearchOut, StatusFilter

router = APIRouter(prefix=API_PREFIX, tags=["search"])

MAX_QUERY_LENGTH = 200


@router.get("/search", response_model=SearchOut, responses=problem_responses(400, 422))
async def search(
    request: Request,
    response: Response,
    session: DbSession,
    current: MaybePrincipal,
    codec: Cursors,
    flags: Flags,
    q: Annotated[
        str,
        Query(min_length=1, max_length=MAX_QUERY_LENGTH, examples=["idempotency keys"]),
    ],
    mode: Annotated[
        Mode, Query(description="words: whole words; prefix: as you type")
    ] = Mode.WORDS,
    roadmap: Annotated[str | None, Query(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)] = None,
    kind: Annotated[list[Kind] | None, Query(description="Repeat to allow several")] = None,
    status: Annotated[StatusFilter | None, Query(description="Your status of the topic")] = None,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_PAGE_SIZE,
) -> SearchOut:
    """Search topics of every roadmap you may see, and your own notes and resources.

    Ranked, with highlighted titles and snippets. Anonymous callers search public roadmaps;
    an API key reaches notes and resources only with the `progress:read` scope.
    """
    viewer = await orgs.viewer_of(session, current)
    personal = current is not None and current.has_scope(Scope.PROGRESS_READ)
    kinds = frozenset(k.value for k in kind) if kind else frozenset(service.KINDS)
    scope = _cursor_scope(viewer, q, mode, roadmap, kinds, status)
    position = decode_position(codec, scope, cursor)
    results = await service.search(
        session,
        viewer,
        service.SearchRequest(
            text=q,
            mode=mode,
            roadmap=roadmap,
            kinds=kinds,
            status=status.value if status else None,
            after=_after(position),
            fuzzy=position is not None and str(position.key).startswith("~"),
            limit=limit,
            typo_tolerance=await flags.is_enabled(
                service.TYPO_TOLERANCE_FLAG,
                default=True,
                user_id=viewer.user_id,
                organisation_ids=sorted(viewer.org_roles),
            ),
        ),
        personal=personal,
    )
    response.headers["cache-control"] = conditional.PRIVATE
    next_position = None
    if results.next_after:
        # The key carries the last score, and whether the search forgave typos ("~").
        score, last_id = results.next_after
        next_position = Position("next", ("~" if results.fuzzy else "") + repr(score), last_id)
    links = page_links(request, response, codec, scope, Page([], next_position, None))
    return SearchOut(
        items=[_hit_out(hit) for hit in results.hits], counts=results.counts, links=links
    )


def _after(position: Position | None) -> tuple[float, int] | None:
    """Only forward cursors are handed out; their key is the last hit's score."""
    if position is None:
        return None
    if position.direction != "next" or not isinstance(position.key, str):
        raise InvalidCursor()
    try:
        return float(position.key.removeprefix("~")), position.id
    except ValueError as error:
        raise InvalidCursor() from error


def _cursor_scope(
    viewer: Viewer,
    q: str,
    mode: Mode,
    roadmap: str | None,
    kinds: frozenset[str],
    status: StatusFilter | None,
) -> str:
    """A cursor continues the very search that made it, for the same caller."""
    described = "\n".join([q, mode, roadmap or "", ",".join(sorted(kinds)), status or ""])
    digest = hashlib.sha256(described.encode()).hexdigest()[:32]
    return f"search:{viewer.user_id or 0}:{digest}"


def _hit_out(hit: service.SearchHit) -> SearchHitOut:
    topic_url = f"{API_PREFIX}/roadmaps/{hit.roadmap}/topics/{hit.topic}"
    url = {
        "topic": topic_url,
        "note": f"{API_PREFIX}/me/progress/{hit.roadmap}/{hit.topic}/note",
        "resource": f"{API_PREFIX}/me/progress/{hit.roadmap}/{hit.topic}/resources",
    }[hit.kind]
    return SearchHitOut(
        kind=Kind(hit.kind),
        roadmap=hit.roadmap,
        topic=hit.topic,
        topic_title=hit.topic_title,
        title_html=hit.title_html,
        snippet_html=hit.snippet_html,
        score=hit.score,
        resource_id=hit.resource_id,
        url=url,
    )
