"""Study rooms as pages: the room's recent messages, who is here, a message form.

Without JavaScript the room is a page like any other: messages are posted (and deleted, by
owners and mentors) with plain forms, and a reload shows what others wrote. With JavaScript,
`static/room.js` asks for a ticket with the page's CSRF token, opens the room's WebSocket
(docs/realtime.md) and sends the same form's text as a `message` frame: messages, deletions,
presence and typing then arrive live, and a dropped socket resumes from the last sequence
number the page holds (`last_seq`), so nothing is missed or shown twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from skilltree.accounts.service import SignedIn
from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.orgs import service as orgs
from skilltree.platform.db import after_commit
from skilltree.platform.errors import DomainError
from skilltree.platform.http.bounds import RowId
from skilltree.platform.state import AppResources, DbSession, Resources
from skilltree.rooms import service as rooms
from skilltree.rooms.errors import RoomNotFound
from skilltree.rooms.gateway import entry_message, room_channel
from skilltree.rooms.presence import Presence
from skilltree.web.errors import PageRoute
from skilltree.web.session import Member, Posted, SignedInForm, csrf_token
from skilltree.web.templating import page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

OrgSlug = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
RoomKey = Annotated[str, Path(pattern=SLUG_PATTERN, max_length=MAX_SLUG_LENGTH)]
# The page shows the newest messages; the socket's replay or the API's history has the rest.
SHOWN = 100


async def _room(db: DbSession, member: orgs.Member, key: str, now: datetime) -> rooms.RoomView:
    found = next((r for r in await rooms.rooms(db, member, now) if r.key == key), None)
    if found is None:
        raise RoomNotFound(key)
    return found


async def _room_page(
    request: Request,
    org: str,
    key: str,
    current: SignedIn,
    db: DbSession,
    resources: Resources,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    member = await orgs.membership_of(db, org, current.principal)
    room = await _room(db, member, key, resources.clock.now())
    _, entries = await rooms.history(
        db, member, key, max(0, room.last_seq - SHOWN), SHOWN, resources.clock.now()
    )
    people = await orgs.members(db, member)
    presence: Presence = request.app.state.room_presence
    context = {
        "current": current,
        "csrf": csrf_token(current),
        "member": member,
        "room": room,
        "messages": [e for e in entries if e.kind == "message"],
        "names": {p.user_id: p.display_name for p in people},
        "people": people,
        "present": set(await presence.present(room.id)),
        "moderates": member.role in rooms.MODERATORS,
        "max_chars": resources.settings.realtime.max_message_chars,
        "errors": [],
        "draft": "",
        **extra,
    }
    return page(request, "room.html", context, status_code=status_code)


@router.get("/orgs/{org}/rooms/{room}")
async def room_page(
    request: Request,
    org: OrgSlug,
    room: RoomKey,
    current: Member,
    db: DbSession,
    resources: AppResources,
) -> Response:
    return await _room_page(request, org, room, current, db, resources)


@router.post("/orgs/{org}/rooms/{room}/messages")
async def post_message(
    request: Request,
    org: OrgSlug,
    room: RoomKey,
    form: SignedInForm,
    db: DbSession,
    resources: AppResources,
) -> Response:
    """The message form without JavaScript: stored and announced as the socket would."""
    member = await orgs.membership_of(db, org, form.current.principal)
    found = await _room(db, member, room, resources.clock.now())
    body = form.get("body")
    try:
        entry = await rooms.post(
            db,
            found,
            form.current.user.id,
            body,
            resources.clock.now(),
            resources.settings.realtime.max_message_chars,
        )
    except DomainError as error:
        return await _room_page(
            request,
            org,
            room,
            form.current,
            db,
            resources,
            error.status,
            errors=[error.detail],
            draft=body[: resources.settings.realtime.max_message_chars * 2],
        )
    _announce(db, resources, found, entry_message(entry, {entry.author_id or 0: _name(form)}))
    return RedirectResponse(f"/orgs/{org}/rooms/{room}#m-{entry.seq}", status_code=303)


@router.post("/orgs/{org}/rooms/{room}/messages/{seq}/delete")
async def delete_message(
    request: Request,
    org: OrgSlug,
    room: RoomKey,
    seq: RowId,
    form: SignedInForm,
    db: DbSession,
    resources: AppResources,
) -> Response:
    """Owners and mentors delete a message; everyone in the room sees it go."""
    member = await orgs.membership_of(db, org, form.current.principal)
    try:
        found, deletion = await rooms.moderate(db, member, room, seq, resources.clock.now())
    except DomainError as error:
        return await _room_page(
            request, org, room, form.current, db, resources, error.status, errors=[error.detail]
        )
    _announce(db, resources, found, entry_message(deletion, {}))
    return RedirectResponse(f"/orgs/{org}/rooms/{room}", status_code=303)


def _name(form: Posted) -> str:
    name: str = form.current.user.display_name
    return name


def _announce(db: DbSession, resources: Resources, room: rooms.RoomView, message: Any) -> None:
    """Sockets in the room hear of the entry once it is committed (never of a rolled-back one)."""

    async def publish() -> None:
        await resources.broadcaster.publish(room_channel(room.id), message, keep=False)

    after_commit(db, publish)
