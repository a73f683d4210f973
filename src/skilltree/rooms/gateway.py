"""One study-room WebSocket: the protocol of docs/realtime.md, between a socket and the rules.

Three loops run per connection until the first of them ends:
- receiving: the client's frames (chat, typing, heartbeat, read, delete), rate-limited;
- sending: the room's fan-out, from a bounded queue, in sequence order — a numbered entry
  that arrives before an earlier one (two instances published them in the other order) is
  preceded by the entries missing in between, read from the database, and anything already
  sent is skipped;
- upkeep: sweeping expired presence and checking the member still belongs to the room.

A client that reads too slowly fills its queue: it is closed with 4008 and a reason, and the
room never waits for it. When the server shuts down, every socket is closed with 1012
("service restart") and a reason; the reference client (rooms/client.py) reconnects and
resumes from its last sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from typing import Any

import orjson
import structlog
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect

from skilltree.accounts import service as accounts
from skilltree.accounts.dependencies import accounts_context_of
from skilltree.platform.broadcast import Delivery, Subscription
from skilltree.platform.errors import DomainError
from skilltree.platform.state import Resources
from skilltree.rooms import service
from skilltree.rooms.presence import OFFLINE, ONLINE, Presence, PresenceAnnouncer
from skilltree.rooms.service import Admission, EntryView

log = structlog.get_logger(__name__)

# Close codes (RFC 6455 section 7.4; 4000-4999 are the application's own).
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012
SLOW_CONSUMER = 4008
NOT_A_MEMBER = 4403
SIGNED_OUT = 4401
RATE_LIMITED = 4029
# How long a close may wait for a client that does not read before the socket is dropped.
CLOSE_PATIENCE_SECONDS = 10.0
# How long publishing to the room may take before the fan-out counts as unreachable.
ANNOUNCE_PATIENCE_SECONDS = 5.0
# The frames that are entries of the room's log, numbered and replayable.
LOGGED = frozenset({"message", "deletion"})


def room_channel(room_id: int) -> str:
    return f"room:{room_id}"


def entry_message(entry: EntryView, names: dict[int, str]) -> dict[str, Any]:
    if entry.kind == "deletion":
        return {
            "type": "deletion",
            "seq": entry.seq,
            "target_seq": entry.target_seq,
            "by": entry.author_id,
            "created_at": entry.created_at.isoformat(),
        }
    return {
        "type": "message",
        "seq": entry.seq,
        "author_id": entry.author_id,
        "author": names.get(entry.author_id or 0),
        "body": entry.body,
        "deleted": entry.deleted,
        "created_at": entry.created_at.isoformat(),
    }


class RateWindow:
    """At most `limit` events in any `window` seconds (a sliding log of their times)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        admission: Admission,
        resources: Resources,
        presence: Presence,
        announcer: PresenceAnnouncer,
    ) -> None:
        self.websocket = websocket
        self.admission = admission
        self.room = admission.room
        self.resources = resources
        self.settings = resources.settings.realtime
        self.presence = presence
        self.announcer = announcer
        self.id = uuid.uuid4().hex[:12]
        self.channel = room_channel(self.room.id)
        self.last_sent = 0
        self.names: dict[int, str] = {}
        self.messages = RateWindow(self.settings.rate_messages, self.settings.rate_window_seconds)
        # Every frame counts here too, so typing or heartbeats cannot flood either.
        self.frames = RateWindow(
            self.settings.rate_messages * 10, self.settings.rate_window_seconds
        )
        self.refusals = 0
        self.last_typing = 0.0
        self._unannounced = False  # the fan-out failed and that was logged
        self._closing: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def run(self, last_seq: int | None) -> None:
        broadcaster = self.resources.broadcaster
        async with broadcaster.subscribe(
            [self.channel], self.settings.send_queue, on_overflow=self._overflowed
        ) as subscription:
            try:
                try:
                    await self._enter(subscription, last_seq)
                except WebSocketDisconnect:
                    return  # gone before the welcome and replay were written
                loops = [
                    asyncio.create_task(self._receive(), name="room-receive"),
                    asyncio.create_task(self._pump(subscription), name="room-pump"),
                    asyncio.create_task(self._upkeep(), name="room-upkeep"),
                    asyncio.create_task(self._done.wait(), name="room-closed"),
                ]
                try:
                    finished, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
                    self._report_failures(finished)
                finally:
                    for loop in loops:
                        loop.cancel()
                    await asyncio.gather(*loops, return_exceptions=True)
                if self._closing is not None:
                    await asyncio.gather(self._closing, return_exceptions=True)
            finally:
                await self._leave()

    async def _enter(self, subscription: Subscription, last_seq: int | None) -> None:
        user = self.admission.user_id
        async with self.resources.database.unit_of_work() as db:
            reads = await service.reads(db, self.room.id)
            missed = (
                await service.replay(db, self.room.id, last_seq, self.settings.replay_limit + 1)
                if last_seq is not None
                else []
            )
            if missed:
                # Authors' names only for a replay: live messages carry their author's name.
                self.names = await service.names(db, self.room.org_id)
        if await self.presence.enter(
            self.room.id, user, self.id, self.settings.presence_ttl_seconds
        ):
            self.announcer.note(self.channel, user, ONLINE)
        await self._send(
            {
                "type": "welcome",
                "room": self.room.key,
                "title": self.room.title,
                "user_id": user,
                "last_seq": self.room.last_seq,
                "present": await self.presence.present(self.room.id),
                "reads": {str(k): v for k, v in reads.items()},
                "heartbeat_seconds": self.settings.presence_ttl_seconds / 3,
                "max_message_chars": self.settings.max_message_chars,
            }
        )
        self.last_sent = self.room.last_seq if last_seq is None else last_seq
        if len(missed) > self.settings.replay_limit:
            # Too far behind to replay: the client reloads the history page, then goes live.
            await self._send({"type": "reset", "last_seq": self.room.last_seq})
            self.last_sent = self.room.last_seq
            return
        for entry in missed:
            await self._send(entry_message(entry, self.names))
            self.last_sent = entry.seq
        await self._send({"type": "replayed", "last_seq": self.last_sent})

    async def _leave(self) -> None:
        with contextlib.suppress(Exception):
            if await self.presence.leave(self.room.id, self.admission.user_id, self.id):
                self.announcer.note(self.channel, self.admission.user_id, OFFLINE)

    def _report_failures(self, finished: set[asyncio.Task[Any]]) -> None:
        """A loop that raised ends the connection: logged, and the client told so (1011 and a
        reason) rather than left with a dropped connection and no word of why."""
        for loop in finished:
            error = None if loop.cancelled() else loop.exception()
            if error is None or isinstance(error, WebSocketDisconnect):
                continue  # ended normally, or the client went away while being written to
            log.error(
                "room.loop_failed",
                loop=loop.get_name(),
                room=self.room.id,
                user=self.admission.user_id,
                error=repr(error),
            )
            self._begin_close(INTERNAL_ERROR, "internal error; reconnect")

    def _overflowed(self) -> None:
        log.warning("room.slow_consumer", room=self.room.id, user=self.admission.user_id)
        self._begin_close(SLOW_CONSUMER, "slow consumer: too many messages waiting to be sent")

    def _begin_close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            # A client that stopped reading may never make room for the close frame.
            async with asyncio.timeout(CLOSE_PATIENCE_SECONDS):
                await self.websocket.close(code, reason)
        except (TimeoutError, RuntimeError, OSError) as error:
            log.warning("room.close_failed", code=code, error=repr(error))
        finally:
            self._done.set()

    # ------------------------------------------------------------------ the three loops

    async def _receive(self) -> None:
        try:
            while True:
                raw = await self.websocket.receive_text()
                if not self.frames.allow():
                    await self._refuse("rate-limited", "Too many frames; slow down.")
                    continue
                await self._handle(raw)
        except (WebSocketDisconnect, KeyError, RuntimeError):
            return  # the client went away (or sent a binary frame, which this protocol is not)

    async def _pump(self, subscription: Subscription) -> None:
        while True:
            delivery = await subscription.next(wait_seconds=3600)
            if subscription.ended is not None:
                self._begin_close(SERVICE_RESTART, subscription.ended)
                return
            if subscription.overflowed:
                return  # closing already (see _overflowed)
            if delivery is not None:
                await self._deliver(delivery)

    async def _upkeep(self) -> None:
        sweep_every = self.settings.presence_ttl_seconds / 2
        check_every = self.settings.credential_check_seconds
        next_check = time.monotonic() + check_every
        while True:
            await asyncio.sleep(min(sweep_every, check_every))
            # One sweep per room and process per interval, not one per socket: a room of n
            # sockets sweeping n entries each is n² work every interval.
            if self.presence.sweep_due(self.room.id, sweep_every / 2):
                for user_id in await self.presence.sweep(self.room.id):
                    self.announcer.note(self.channel, user_id, OFFLINE)
            if time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + check_every
            async with self.resources.database.unit_of_work() as db:
                signed_in = await self._still_signed_in(db)
                role = await service.role_in(db, self.room, self.admission.user_id)
            if not signed_in:
                self._begin_close(SIGNED_OUT, "signed out")
                return
            if role is None:
                self._begin_close(NOT_A_MEMBER, "no longer a member of this organisation")
                return

    async def _still_signed_in(self, db: AsyncSession) -> bool:
        """The sign-in that asked for the ticket still holds (not signed out, revoked or
        expired), checked as a new request with it would be."""
        credential = self.admission.credential
        if credential is None:
            return False  # a ticket from before credentials were recorded: reconnect
        context = accounts_context_of(self.resources)
        return await accounts.credential_in_force(db, context, self.admission.user_id, credential)

    # ------------------------------------------------------------------ sending

    async def _send(self, message: dict[str, Any]) -> None:
        await self.websocket.send_text(orjson.dumps(message).decode())

    async def _send_encoded(self, delivery: Delivery) -> None:
        """A fan-out message as the broadcaster encoded it, once for every socket."""
        await self.websocket.send_text(delivery.text)

    async def _announce(self, message: dict[str, Any]) -> bool:
        """Publish to the room on every instance; False when the fan-out is unreachable (Redis
        down): the entry is saved all the same, and members receive it when the fan-out is
        back, before the next entry (see `_deliver`) or on reconnecting."""
        try:
            async with asyncio.timeout(ANNOUNCE_PATIENCE_SECONDS):
                await self.resources.broadcaster.publish(self.channel, message, keep=False)
        except (RedisError, OSError, TimeoutError) as error:
            if not self._unannounced:
                self._unannounced = True
                log.warning("room.fanout_unavailable", room=self.room.id, error=repr(error))
            return False
        self._unannounced = False
        return True

    async def _announce_entry(self, message: dict[str, Any]) -> None:
        if not await self._announce(message):
            await self._send(
                {
                    "type": "error",
                    "code": "not-delivered-live",
                    "seq": message.get("seq"),
                    "detail": "Saved, but the room cannot be told now; the others will see "
                    "it once the connection is back.",
                }
            )

    async def _deliver(self, delivery: Delivery) -> None:
        message = delivery.message
        seq = message.get("seq")
        if message.get("type") not in LOGGED or not isinstance(seq, int):
            if message.get("type") == "typing" and message.get("user_id") == self.admission.user_id:
                return  # nobody needs to see themselves typing
            await self._send_encoded(delivery)
            return
        if seq <= self.last_sent:
            return  # already sent (replayed, or filled in before it arrived)
        if seq > self.last_sent + 1:
            async with self.resources.database.unit_of_work() as db:
                gap = await service.replay(
                    db, self.room.id, self.last_sent, seq - self.last_sent - 1
                )
                if not self.names:
                    self.names = await service.names(db, self.room.org_id)
            for entry in gap:
                await self._send(entry_message(entry, self.names))
                self.last_sent = entry.seq
        await self._send_encoded(delivery)
        self.last_sent = seq

    # ------------------------------------------------------------------ receiving

    async def _refuse(self, code: str, detail: str) -> None:
        self.refusals += 1
        if self.refusals > self.settings.rate_messages:
            self._begin_close(RATE_LIMITED, "rate limit exceeded")
            return
        await self._send({"type": "error", "code": code, "detail": detail})

    async def _handle(self, raw: str) -> None:
        if len(raw) > self.settings.max_message_chars * 4 + 1024:
            await self._send({"type": "error", "code": "invalid-message", "detail": "Too long."})
            return
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            frame = None
        kind = frame.get("type") if isinstance(frame, dict) else None
        handler = {
            "message": self._on_message,
            "typing": self._on_typing,
            "heartbeat": self._on_heartbeat,
            "read": self._on_read,
            "delete": self._on_delete,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None or not isinstance(frame, dict):
            await self._send(
                {"type": "error", "code": "invalid-frame", "detail": "Unknown or malformed frame."}
            )
            return
        try:
            await handler(frame)
        except DomainError as error:
            await self._send({"type": "error", "code": error.type_slug, "detail": error.detail})

    async def _on_message(self, frame: dict[str, Any]) -> None:
        body = frame.get("body")
        if not isinstance(body, str):
            await self._send({"type": "error", "code": "invalid-message", "detail": "No body."})
            return
        if not self.messages.allow():
            await self._refuse("rate-limited", "Too many messages; wait a moment.")
            return
        now = self.resources.clock.now()
        async with self.resources.database.unit_of_work() as db:
            entry = await service.post(
                db, self.room, self.admission.user_id, body, now, self.settings.max_message_chars
            )
        message = entry_message(entry, {self.admission.user_id: self.admission.display_name})
        client_id = frame.get("client_id")
        if isinstance(client_id, str) and len(client_id) <= 64:
            message["client_id"] = client_id  # lets the sender match its own message
        await self._announce_entry(message)

    async def _on_typing(self, _frame: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last_typing < self.settings.typing_interval_seconds:
            return  # throttled: one indicator per interval is enough
        self.last_typing = now
        await self._announce({"type": "typing", "user_id": self.admission.user_id})

    async def _on_heartbeat(self, _frame: dict[str, Any]) -> None:
        ttl = self.settings.presence_ttl_seconds
        if await self.presence.enter(self.room.id, self.admission.user_id, self.id, ttl):
            self.announcer.note(self.channel, self.admission.user_id, ONLINE)

    async def _on_read(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq <= 2**31:
            await self._send({"type": "error", "code": "invalid-frame", "detail": "seq?"})
            return
        async with self.resources.database.unit_of_work() as db:
            await service.mark_read(
                db, self.room.id, self.admission.user_id, seq, self.resources.clock.now()
            )
        await self._announce({"type": "read", "user_id": self.admission.user_id, "seq": seq})

    async def _on_delete(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq <= 2**31:
            await self._send({"type": "error", "code": "invalid-frame", "detail": "seq?"})
            return
        async with self.resources.database.unit_of_work() as db:
            deletion = await service.delete_message(
                db, self.room, self.admission.user_id, seq, self.resources.clock.now()
            )
        await self._announce_entry(entry_message(deletion, self.names))
