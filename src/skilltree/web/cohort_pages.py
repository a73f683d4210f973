"""Cohort pages: an organisation's activity feed and the mentors' view.

Each page is rendered whole on the server and reads the same services as the API
(`cohorts.service`). With JavaScript, `static/live.js` listens to the organisation's event
stream (`GET /v1/orgs/{org}/feed/stream`) and, when something happens, fetches the same page
again and swaps its live region: the server's template stays the only renderer, and what a
viewer sees live is exactly what a reload would show them (docs/web.md, decision 0047).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from skilltree.accounts.service import SignedIn
from skilltree.cohorts import service as cohorts
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.orgs import service as orgs
from skilltree.platform.http.pagination import CursorParam
from skilltree.platform.pagination import decode_position
from skilltree.platform.state import AppResources, DbSession
from skilltree.web.errors import PageRoute
from skilltree.web.session import Member, csrf_token
from skilltree.web.templating import page
from skilltree.web.views import Bar

router = APIRouter(route_class=PageRoute, include_in_schema=False)

OrgSlug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
FEED_PAGE = 20


def feed_stream_url(org: str) -> str:
    return f"/v1/orgs/{org}/feed/stream"


def _base(current: SignedIn, member: orgs.Member, **context: Any) -> dict[str, Any]:
    return {
        "current": current,
        "csrf": csrf_token(current),
        "member": member,
        "manages": member.role in cohorts.MANAGERS,
        "errors": [],
        **context,
    }


@router.get("/orgs/{org}/feed")
async def feed_page(
    request: Request,
    org: OrgSlug,
    current: Member,
    db: DbSession,
    resources: AppResources,
    cursor: CursorParam = None,
) -> Response:
    """Newest first, a page at a time; the first page follows the stream."""
    member = await orgs.membership_of(db, org, current.principal)
    scope = f"org-feed:{member.org.id}"
    position = decode_position(resources.cursors, scope, cursor)
    lines = await cohorts.feed(db, member, position, FEED_PAGE)
    names = {p.user_id: p.display_name for p in await orgs.members(db, member)}
    older = None if lines.next is None else resources.cursors.encode(scope, lines.next)
    context = _base(
        current,
        member,
        lines=lines.items,
        names=names,
        older=older,
        # Only the newest page changes when something happens; older pages stay still.
        stream=feed_stream_url(org) if cursor is None else None,
    )
    return page(request, "feed.html", context)


@router.get("/orgs/{org}/progress")
async def mentor_page(
    request: Request, org: OrgSlug, current: Member, db: DbSession, resources: AppResources
) -> Response:
    """Members × the organisation's roadmaps, for owners and mentors (others: 403)."""
    member = await orgs.membership_of(db, org, current.principal)
    view = await cohorts.mentor_view(db, member, resources.clock.now())
    bars = {
        (standing.user_id, r.slug): Bar.of(r.tally)
        for standing in view.members
        for r in standing.roadmaps
    }
    context = _base(current, member, view=view, bars=bars, stream=feed_stream_url(org))
    return page(request, "mentor.html", context)
