"""The rules of study rooms: who may enter, what a message may contain, how entries are
numbered, who may delete them.

Every entry of a room's log (a message, or the deletion of one) takes the room's next
sequence number in the transaction that stores it, under the room row's lock, so numbers are
gap-free and commit in order. A client that knows the last number it saw can always be told
exactly what came after it (`replay`).
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.accounts import directory
from skilltree.identity import Viewer
from skilltree.orgs import service as orgs
from skilltree.orgs.errors import RoleRequired
from skilltree.orgs.service import Member, Role
from skilltree.platform.crypto import digest
from skilltree.roadmaps import service as roadmaps
from skilltree.rooms import repository
from skilltree.rooms.errors import InvalidMessage, MessageNotFound, RoomKeyTaken, RoomNotFound
from skilltree.rooms.models import Room, RoomEntry, RoomTicket

LOBBY = "lobby"
MODERATORS = frozenset({Role.OWNER, Role.MENTOR})
# Bidirectional overrides and isolates reorder how text is displayed: a message could show
# one thing and say another ("Trojan Source"). They are removed, as are other invisible
# format and control characters; the zero-width joiner stays (it builds emoji).
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_KEPT_FORMAT = frozenset("\u200d\n\t")


@dataclass(frozen=True)
class RoomView:
    id: int
    org_id: int
    key: str
    title: str
    topic_id: int | None
    last_seq: int


@dataclass(frozen=True)
class EntryView:
    seq: int
    kind: str  # message | deletion
    author_id: int | None
    body: str | None  # None once deleted
    target_seq: int | None
    created_at: datetime
    deleted: bool


@dataclass(frozen=True)
class Ticket:
    secret: str
    expires_at: datetime
    room: RoomView


@dataclass(frozen=True)
class Admission:
    """Who a redeemed ticket let in, and where."""

    user_id: int
    display_name: str
    role: Role
    room: RoomView
    # The sign-in the ticket was issued with (accounts.service.credential_reference).
    credential: str | None


def _room_view(room: Room) -> RoomView:
    return RoomView(room.id, room.org_id, room.key, room.title, room.topic_id, room.last_seq)


def _entry_view(entry: RoomEntry) -> EntryView:
    return EntryView(
        seq=entry.seq,
        kind=entry.kind,
        author_id=entry.author_id,
        body=entry.body,
        target_seq=entry.target_seq,
        created_at=entry.created_at,
        deleted=entry.deleted_at is not None,
    )


def sanitise(body: str, max_chars: int) -> str:
    """Chat is plain text (clients insert it as text, never as HTML): normalised to NFC,
    without control, format or bidirectional-override characters, trimmed, size-capped."""
    text = unicodedata.normalize("NFC", body).translate(_BIDI)
    text = "".join(
        ch for ch in text if ch in _KEPT_FORMAT or unicodedata.category(ch)[0] != "C"
    ).strip()
    if not text:
        raise InvalidMessage("A message needs some visible text.")
    if len(text) > max_chars:
        raise InvalidMessage(f"A message has at most {max_chars} characters.", limit=max_chars)
    return text


async def _lobby(db: AsyncSession, member: Member, now: datetime) -> Room:
    """Every organisation has a lobby; it is made when first needed."""
    room = await repository.get_room(db, member.org.id, LOBBY)
    if room is not None:
        return room
    # Two first visitors at once (two instances, two tabs) must not collide on the key.
    return await repository.ensure_room(
        db,
        {
            "org_id": member.org.id,
            "key": LOBBY,
            "title": f"{member.org.name} lobby",
            "created_by": member.caller.user_id,
            "created_at": now,
            "last_seq": 0,
        },
    )


async def _room(db: AsyncSession, member: Member, key: str, now: datetime) -> Room:
    if key == LOBBY:
        return await _lobby(db, member, now)
    room = await repository.get_room(db, member.org.id, key)
    if room is None:
        raise RoomNotFound(key)
    return room


async def rooms(db: AsyncSession, member: Member, now: datetime) -> list[RoomView]:
    await _lobby(db, member, now)
    return [_room_view(room) for room in await repository.rooms_of(db, member.org.id)]


async def create_room(
    db: AsyncSession,
    member: Member,
    now: datetime,
    *,
    key: str,
    title: str,
    roadmap: str | None,
    topic: str | None,
) -> RoomView:
    """Any member may open a room, for a topic of a roadmap the organisation can see."""
    topic_id = None
    if roadmap is not None and topic is not None:
        viewer = Viewer(
            user_id=member.caller.user_id, org_roles=await orgs.roles_of(db, member.caller.user_id)
        )
        topic_id = (await roadmaps.find_topic(db, roadmap, topic, viewer)).id
    if key == LOBBY or await repository.get_room(db, member.org.id, key) is not None:
        raise RoomKeyTaken(key)
    room = Room(
        org_id=member.org.id,
        key=key,
        title=title,
        topic_id=topic_id,
        created_by=member.caller.user_id,
        created_at=now,
        last_seq=0,
    )
    repository.add(db, room)
    try:
        await repository.flush(db)
    except IntegrityError as error:  # opened concurrently
        raise RoomKeyTaken(key) from error
    return _room_view(room)


async def issue_ticket(
    db: AsyncSession, member: Member, key: str, now: datetime, ttl_seconds: int, credential: str
) -> Ticket:
    """A single-use permission to open the room's socket within `ttl_seconds`. Browsers
    cannot set headers on a WebSocket handshake, so the credential travels as this ticket,
    obtained with a normal authenticated request, instead of as a long-lived token in a URL."""
    room = await _room(db, member, key, now)
    secret = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=ttl_seconds)
    repository.add(
        db,
        RoomTicket(
            ticket_hash=digest(secret),
            user_id=member.caller.user_id,
            room_id=room.id,
            expires_at=expires_at,
            credential=credential,
        ),
    )
    await repository.flush(db)
    return Ticket(secret, expires_at, _room_view(room))


async def admit(db: AsyncSession, secret: str, now: datetime) -> Admission | None:
    """Redeem a ticket: None when it is unknown, used or expired, or its holder has left the
    organisation since."""
    if not secret or len(secret) > 100:
        return None
    redeemed = await repository.redeem_ticket(db, digest(secret), now)
    if redeemed is None:
        return None
    user_id, room_id, credential = redeemed
    room = await repository.get_room_by_id(db, room_id)
    if room is None:
        return None
    # The user's own rows only: a thousand members connecting must not each read the others.
    role = await role_in(db, _room_view(room), user_id)
    people = await directory.people(db, [user_id])
    if role is None or not people:
        return None
    return Admission(user_id, people[0].display_name, role, _room_view(room), credential)


async def role_in(db: AsyncSession, room: RoomView, user_id: int) -> Role | None:
    """The user's role in the room's organisation now, None once they left it. Every open
    socket asks this periodically: one indexed lookup of the user's memberships, never a
    read of the whole organisation."""
    role = (await orgs.roles_of(db, user_id)).get(room.org_id)
    return None if role is None else Role(role)


async def post(
    db: AsyncSession, room: RoomView, author_id: int, body: str, now: datetime, max_chars: int
) -> EntryView:
    text = sanitise(body, max_chars)
    seq = await repository.next_seq(db, room.id)
    entry = RoomEntry(
        room_id=room.id, seq=seq, kind="message", author_id=author_id, body=text, created_at=now
    )
    repository.add(db, entry)
    await repository.flush(db)
    return _entry_view(entry)


async def delete_message(
    db: AsyncSession, room: RoomView, actor_id: int, seq: int, now: datetime
) -> EntryView:
    """Owners and mentors delete a message: its text is erased, and the deletion is an entry
    of its own (with the next number), so clients replaying the log learn of it."""
    if await role_in(db, room, actor_id) not in MODERATORS:
        raise RoleRequired("Only an organisation owner or mentor may delete messages.")
    target = await repository.entry(db, room.id, seq)
    if target is None or target.kind != "message":
        raise MessageNotFound(seq)
    if target.deleted_at is not None:
        raise MessageNotFound(seq)
    target.body, target.deleted_at = None, now
    deletion_seq = await repository.next_seq(db, room.id)
    entry = RoomEntry(
        room_id=room.id,
        seq=deletion_seq,
        kind="deletion",
        author_id=actor_id,
        target_seq=seq,
        created_at=now,
    )
    repository.add(db, entry)
    await repository.flush(db)
    return _entry_view(entry)


async def replay(db: AsyncSession, room_id: int, after_seq: int, limit: int) -> list[EntryView]:
    return [_entry_view(e) for e in await repository.entries_after(db, room_id, after_seq, limit)]


async def history(
    db: AsyncSession, member: Member, key: str, after_seq: int, limit: int, now: datetime
) -> tuple[RoomView, list[EntryView]]:
    room = await _room(db, member, key, now)
    return _room_view(room), await replay(db, room.id, after_seq, limit)


async def moderate(
    db: AsyncSession, member: Member, key: str, seq: int, now: datetime
) -> tuple[RoomView, EntryView]:
    room = _room_view(await _room(db, member, key, now))
    return room, await delete_message(db, room, member.caller.user_id, seq, now)


async def mark_read(db: AsyncSession, room_id: int, user_id: int, seq: int, now: datetime) -> None:
    await repository.mark_read(db, room_id, user_id, seq, now)


async def reads(db: AsyncSession, room_id: int) -> dict[int, int]:
    return await repository.reads_of(db, room_id)


async def names(db: AsyncSession, org_id: int) -> dict[int, str]:
    return {i.user_id: i.display_name for i in await orgs.member_infos(db, org_id)}
