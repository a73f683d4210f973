"""HTTP routes of study rooms, and the WebSocket they open.

The socket's handshake carries no credential a browser could attach by itself: a member asks
for a single-use ticket with a normal authenticated POST (cookie + CSRF token, or bearer), then
connects with it. The `Origin` of the handshake must be on the allow-list (or this server's
own): a page on another site cannot open a socket with a visitor's ticket-less cookies, and
cannot use a ticket it does not have.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket, status

from skilltree.accounts import service as accounts
from skilltree.accounts.dependencies import CurrentSignIn
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.orgs.dependencies import OrgManager, OrgReader
from skilltree.platform.db import after_commit
from skilltree.platform.http.bounds import RowId
from skilltree.platform.http.problems import problem_responses
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.state import AppResources, DbSession, Resources
from skilltree.rooms import service
from skilltree.rooms.gateway import (
    POLICY_VIOLATION,
    SERVICE_RESTART,
    Connection,
    entry_message,
    room_channel,
)
from skilltree.rooms.presence import Presence, PresenceAnnouncer
from skilltree.rooms.schemas import (
    EntryListOut,
    EntryOut,
    RoomIn,
    RoomListOut,
    RoomOut,
    TicketOut,
)

router = APIRouter(prefix=API_PREFIX, tags=["rooms"])

READ_ERRORS = problem_responses(401, 403, 404)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)
RoomKey = Annotated[str, Query(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
CONNECT_PATH = f"{API_PREFIX}/rooms/connect"


def _room_out(room: service.RoomView) -> RoomOut:
    return RoomOut(key=room.key, title=room.title, last_seq=room.last_seq)


@router.get("/orgs/{org}/rooms", response_model=RoomListOut, responses=READ_ERRORS)
async def list_rooms(member: OrgReader, db: DbSession, resources: AppResources) -> RoomListOut:
    """The organisation's rooms: its lobby and the rooms members opened for topics."""
    rooms = await service.rooms(db, member, resources.clock.now())
    return RoomListOut(items=[_room_out(room) for room in rooms])


@router.post(
    "/orgs/{org}/rooms",
    response_model=RoomOut,
    status_code=status.HTTP_201_CREATED,
    responses=WRITE_ERRORS,
)
async def create_room(
    body: RoomIn, member: OrgManager, db: DbSession, resources: AppResources
) -> RoomOut:
    """Open a room (for a topic, when `roadmap` and `topic` are given). Any member."""
    room = await service.create_room(
        db,
        member,
        resources.clock.now(),
        key=body.key,
        title=body.title,
        roadmap=body.roadmap,
        topic=body.topic,
    )
    return _room_out(room)


@router.post(
    "/orgs/{org}/rooms/{room}/tickets",
    response_model=TicketOut,
    status_code=status.HTTP_201_CREATED,
    responses=READ_ERRORS,
)
async def issue_ticket(
    room: str, member: OrgReader, current: CurrentSignIn, db: DbSession, resources: AppResources
) -> TicketOut:
    """A single-use ticket to open the room's WebSocket, valid for a few seconds. The socket
    lasts as long as the sign-in that asked for it: signing out closes it."""
    ticket = await service.issue_ticket(
        db,
        member,
        room,
        resources.clock.now(),
        resources.settings.realtime.ticket_seconds,
        accounts.credential_reference(current),
    )
    return TicketOut(
        ticket=ticket.secret,
        expires_at=ticket.expires_at,
        url=f"{CONNECT_PATH}?ticket={ticket.secret}",
    )


@router.get("/orgs/{org}/rooms/{room}/messages", response_model=EntryListOut, responses=READ_ERRORS)
async def history(
    room: str,
    member: OrgReader,
    db: DbSession,
    resources: AppResources,
    after_seq: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EntryListOut:
    """The room's log after `after_seq`, oldest first: what a client too far behind to be
    replayed over the socket reads before going live."""
    found, entries = await service.history(
        db, member, room, after_seq, limit, resources.clock.now()
    )
    return EntryListOut(
        items=[
            EntryOut(
                seq=e.seq,
                kind=e.kind,
                author_id=e.author_id,
                body=e.body,
                target_seq=e.target_seq,
                deleted=e.deleted,
                created_at=e.created_at,
            )
            for e in entries
        ],
        last_seq=found.last_seq,
    )


@router.delete(
    "/orgs/{org}/rooms/{room}/messages/{seq}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=WRITE_ERRORS,
)
async def delete_message(
    room: str, seq: RowId, member: OrgManager, db: DbSession, resources: AppResources
) -> None:
    """Owners and mentors delete a message; everyone in the room sees it go."""
    found, deletion = await service.moderate(db, member, room, seq, resources.clock.now())
    message = entry_message(deletion, {})

    async def announce() -> None:
        await resources.broadcaster.publish(room_channel(found.id), message, keep=False)

    after_commit(db, announce)


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """Browsers always send Origin on a WebSocket handshake; other clients need not."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if websocket.url.scheme == "wss" else "http"
    return origin in allowed or origin == f"{scheme}://{websocket.url.netloc}"


@router.websocket("/rooms/connect")
async def connect(
    websocket: WebSocket,
    ticket: Annotated[str, Query(max_length=100)] = "",
    last_seq: Annotated[int | None, Query(ge=0, le=2**31)] = None,
) -> None:
    """Open a room with a ticket; `last_seq` replays what came after it (docs/realtime.md)."""
    resources: Resources = websocket.app.state.resources
    presence: Presence = websocket.app.state.room_presence
    announcer: PresenceAnnouncer = websocket.app.state.room_announcer
    # Refused before the handshake completes: the client sees HTTP 403.
    if resources.broadcaster.draining is not None:
        # Shutting down: the client should connect to another instance, not to this one.
        await websocket.close(SERVICE_RESTART, resources.broadcaster.draining)
        return
    if not origin_allowed(websocket, resources.settings.auth.allowed_origins):
        await websocket.close(POLICY_VIOLATION, "origin not allowed")
        return
    async with resources.database.unit_of_work() as db:
        admission = await service.admit(db, ticket, resources.clock.now())
    if admission is None:
        await websocket.close(POLICY_VIOLATION, "invalid, used or expired ticket")
        return
    await websocket.accept()
    await Connection(websocket, admission, resources, presence, announcer).run(last_seq)
