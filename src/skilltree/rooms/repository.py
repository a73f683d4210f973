"""Every query of the rooms domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.db import is_mysql
from skilltree.rooms.models import Room, RoomEntry, RoomRead, RoomTicket


def add(session: AsyncSession, row: Room | RoomEntry | RoomTicket) -> None:
    session.add(row)


async def flush(session: AsyncSession) -> None:
    await session.flush()


async def get_room(session: AsyncSession, org_id: int, key: str) -> Room | None:
    query = select(Room).where(Room.org_id == org_id, Room.key == key)
    return (await session.execute(query)).scalar_one_or_none()


async def ensure_room(session: AsyncSession, values: dict[str, object]) -> Room:
    """The room with these values' (org_id, key), inserted unless it exists. One statement that
    ignores the unique-key conflict, so two requests making the same room at once both get it
    instead of one failing on the constraint."""
    if is_mysql(session.get_bind().dialect.name):
        from sqlalchemy.dialects.mysql import insert as mysql_insert  # only on MariaDB/MySQL

        statement: Any = mysql_insert(Room).values(**values).prefix_with("IGNORE")
    else:
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
        statement = (
            insert(Room).values(**values).on_conflict_do_nothing(index_elements=["org_id", "key"])
        )
    await session.execute(statement)
    room = await get_room(session, int(str(values["org_id"])), str(values["key"]))
    assert room is not None  # inserted, or there before
    return room


async def get_room_by_id(session: AsyncSession, room_id: int) -> Room | None:
    return await session.get(Room, room_id)


async def rooms_of(session: AsyncSession, org_id: int) -> Sequence[Room]:
    query = select(Room).where(Room.org_id == org_id).order_by(Room.key)
    return (await session.execute(query)).scalars().all()


async def next_seq(session: AsyncSession, room_id: int) -> int:
    """Take the room's next sequence number. The UPDATE locks the room's row until the
    transaction ends, so a later number is never committed before an earlier one."""
    statement = update(Room).where(Room.id == room_id).values(last_seq=Room.last_seq + 1)
    if session.get_bind().dialect.update_returning:
        return int((await session.execute(statement.returning(Room.last_seq))).scalar_one())
    # MariaDB has no UPDATE ... RETURNING: the row stays locked by the UPDATE, so reading it
    # back in the same transaction sees the number just taken.
    await session.execute(statement)
    return int(await session.scalar(select(Room.last_seq).where(Room.id == room_id)) or 0)


async def entries_after(
    session: AsyncSession, room_id: int, after_seq: int, limit: int
) -> Sequence[RoomEntry]:
    query = (
        select(RoomEntry)
        .where(RoomEntry.room_id == room_id, RoomEntry.seq > after_seq)
        .order_by(RoomEntry.seq)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def entry(session: AsyncSession, room_id: int, seq: int) -> RoomEntry | None:
    return await session.get(RoomEntry, (room_id, seq))


async def redeem_ticket(
    session: AsyncSession, ticket_hash: str, now: datetime
) -> tuple[int, int, str | None] | None:
    """Mark the ticket used if it is unused and unexpired, in one statement: of two
    connections racing with the same ticket, exactly one gets (user id, room id, credential)."""
    statement = (
        update(RoomTicket)
        .where(
            RoomTicket.ticket_hash == ticket_hash,
            RoomTicket.used_at.is_(None),
            RoomTicket.expires_at > now,
        )
        .values(used_at=now)
        .returning(RoomTicket.user_id, RoomTicket.room_id, RoomTicket.credential)
    )
    row = (await session.execute(statement)).first()
    return None if row is None else (int(row[0]), int(row[1]), row[2])


async def mark_read(
    session: AsyncSession, room_id: int, user_id: int, seq: int, now: datetime
) -> None:
    """Move the user's read position forward (never back: receipts arrive out of order)."""
    if is_mysql(session.get_bind().dialect.name):
        from sqlalchemy.dialects.mysql import insert as mysql_insert  # only on MariaDB/MySQL

        upsert = mysql_insert(RoomRead).values(
            room_id=room_id, user_id=user_id, last_read_seq=seq, updated_at=now
        )
        forward = RoomRead.last_read_seq < seq
        await session.execute(
            upsert.on_duplicate_key_update(
                last_read_seq=func.if_(forward, seq, RoomRead.last_read_seq),
                updated_at=func.if_(forward, now, RoomRead.updated_at),
            )
        )
        return
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = insert(RoomRead).values(
        room_id=room_id, user_id=user_id, last_read_seq=seq, updated_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["room_id", "user_id"],
        set_={"last_read_seq": seq, "updated_at": now},
        where=RoomRead.last_read_seq < seq,
    )
    await session.execute(statement)


async def reads_of(session: AsyncSession, room_id: int) -> dict[int, int]:
    query = select(RoomRead.user_id, RoomRead.last_read_seq).where(RoomRead.room_id == room_id)
    return {row.user_id: row.last_read_seq for row in await session.execute(query)}
