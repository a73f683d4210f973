"""HTTP routes of the live streams (text/event-stream). Authorisation is exactly the REST
API's: the same dependencies admit the caller, and the stream re-checks them while it runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from skilltree.accounts.dependencies import accounts_context_of, require_scope, signed_in
from skilltree.identity import Principal, Scope
from skilltree.orgs import service as orgs
from skilltree.orgs.dependencies import OrgReader
from skilltree.platform.broadcast import user_channel
from skilltree.platform.errors import DomainError
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, Resources
from skilltree.realtime import service
from skilltree.realtime.eventstream import EventStreamResponse
from skilltree.realtime.live import org_channel

router = APIRouter(prefix=API_PREFIX, tags=["live"])

# Each event of a stream, as the event-stream format frames it (OpenAPI 3.2's `itemSchema`):
# `data` is JSON text whose shape depends on `event` (docs/realtime.md lists them).
STREAM_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0, "maximum": 3_600_000},
    },
}
STREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    # `schema` describes the whole stream, which OpenAPI 3.2 treats as the array of its events
    # (sequential media types); left alone it would be the string FastAPI states for any
    # response class that is not JSON, and a stream that ended with events would contradict it.
    200: {
        "content": {
            "text/event-stream": {
                "schema": {"type": "array", "items": STREAM_EVENT},
                "itemSchema": STREAM_EVENT,
            }
        }
    },
    **problem_responses(401, 403, 404),
}
LastEventId = Annotated[str | None, Header(alias="last-event-id", max_length=64)]
ProgressReader = Annotated[Principal, Depends(require_scope(Scope.PROGRESS_READ))]


def _still_allowed(request: Request, resources: Resources, org: str | None) -> service.StillAllowed:
    """Authenticate the stream's request again, as a new request would be (a revoked
    session, token family or API key fails), and check the membership still holds."""

    async def check() -> bool:
        async with resources.database.unit_of_work() as db:
            try:
                current = await signed_in(request, db, accounts_context_of(resources))
                if org is not None:
                    await orgs.membership_of(db, org, current.principal)
            except DomainError:
                return False
        return True

    return check


@router.get(
    "/orgs/{org}/feed/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses=STREAM_ERRORS,
)
async def org_feed_stream(
    member: OrgReader,
    request: Request,
    resources: AppResources,
    last_event_id: LastEventId = None,
) -> EventStreamResponse:
    """The organisation's feed, live: `feed` events (as the items of GET …/feed), resumable
    with `Last-Event-ID`. See docs/realtime.md for `reset`, `close` and `shutdown`."""
    frames = service.stream(
        resources.broadcaster,
        org_channel(member.org.id),
        "feed",
        last_event_id,
        resources.settings.realtime,
        _still_allowed(request, resources, member.org.slug),
    )
    return EventStreamResponse(frames)


@router.get(
    "/me/stream",
    response_class=EventStreamResponse,
    status_code=200,
    responses=STREAM_ERRORS,
)
async def my_stream(
    current: ProgressReader,
    request: Request,
    resources: AppResources,
    last_event_id: LastEventId = None,
) -> EventStreamResponse:
    """Your own notifications, live: `notice` events (assignments, reminders, completions of
    what you assigned), resumable with `Last-Event-ID`."""
    frames = service.stream(
        resources.broadcaster,
        user_channel(current.user_id),
        "notice",
        last_event_id,
        resources.settings.realtime,
        _still_allowed(request, resources, None),
    )
    return EventStreamResponse(frames)
