"""Fan-out of live messages to every listener on a channel, in this process or in all of them.

    await broadcaster.publish("org:7", {"kind": "topic.done", ...})             # kept in history
    await broadcaster.publish("room:3", {"type": "typing", ...}, keep=False)      # ephemeral
    async with broadcaster.subscribe(["org:7", "user:42"]) as subscription:
        delivery = await subscription.next(wait_seconds=15)

Two implementations with one contract:

- `LocalBroadcaster` (the embedded default, one process): subscribers are queues in memory.
- `RedisBroadcaster` (several instances): a message kept in history is appended to a capped
  Redis stream and published on a pub/sub channel by one Lua script, so history order and live
  order are the same order; every instance holds one pub/sub connection (a pattern
  subscription) and hands each message to its own local subscribers.

Each channel keeps a bounded history (the newest `history_size` kept messages) so a client
that reconnects with the id of the last message it saw (SSE `Last-Event-ID`) receives what it
missed; `history()` returns None when that id is older than what is kept, and the client must
reload instead. Ids are Redis stream ids (`<ms>-<n>`; locally `<n>-0`), ordered by `id_order`.

Backpressure: every subscription has a bounded queue. A subscriber that falls `capacity`
messages behind is marked `overflowed` and receives nothing more: it is that consumer's job to
close its client (with a reason). Publishing never waits for a slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from skilltree.platform.config import RealtimeSettings, RedisSettings

log = structlog.get_logger(__name__)

DEFAULT_CAPACITY = 256
# Every fan-out of this process, so the server can drain them when it is told to stop.
RUNNING: weakref.WeakSet[Broadcaster] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: str
    id: str  # "" for ephemeral messages (never kept, never resumable)
    message: dict[str, Any]
    # The message as JSON, encoded once per process: a room of a thousand sockets sends these
    # same characters to each of them instead of serialising the message a thousand times.
    text: str


def user_channel(user_id: int) -> str:
    """A person's own channel (their stream, GET /v1/me/stream): the one place its name is
    spelled, for every part of the service that tells someone something."""
    return f"user:{user_id}"


def id_order(message_id: str) -> tuple[int, int] | None:
    """The sort key of a history id, or None when it is not one (a forged Last-Event-ID)."""
    first, _, second = message_id.partition("-")
    if not (first.isdigit() and second.isdigit()) or len(message_id) > 40:
        return None
    return int(first), int(second)


class Subscription:
    """One listener: a bounded queue of deliveries for a set of channels.

    A plain deque and at most one waiting future, rather than an asyncio.Queue and tasks:
    an idle listener costs a few hundred bytes, and a worker holds thousands of them.
    """

    def __init__(
        self,
        channels: Iterable[str],
        capacity: int,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.channels = frozenset(channels)
        self._capacity = capacity
        # Called once, when the queue overflows: a consumer stuck in a send learns of it here.
        self._on_overflow = on_overflow
        self._items: deque[Delivery] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        # Why the fan-out ended this subscription (the server is shutting down), if it did.
        self.ended: str | None = None

    def offer(self, delivery: Delivery) -> None:
        if self.overflowed or self.ended is not None:
            return
        if len(self._items) >= self._capacity:
            # Never block the publisher: this listener is dropped, and its consumer told so.
            self.overflowed = True
            self._items.clear()
            if self._on_overflow is not None:
                self._on_overflow()
        else:
            self._items.append(delivery)
        self._wake()

    def end(self, reason: str) -> None:
        self.ended = reason
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, wait_seconds: float) -> Delivery | None:
        """The next delivery; None after `wait_seconds` without one, once overflowed, or
        once ended (the caller tells these apart by `overflowed` and `ended`)."""
        if not self._items and not self.overflowed and self.ended is None:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(wait_seconds):
                    await self._waiter
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        if self.overflowed or self.ended is not None or not self._items:
            return None
        return self._items.popleft()

    def pending(self) -> int:
        return len(self._items)


class Broadcaster:
    """The local fan-out every implementation shares; `publish`/`history` differ."""

    def __init__(self, history_size: int) -> None:
        self.history_size = history_size
        self._subscribers: dict[str, set[Subscription]] = {}
        self.draining: str | None = None
        self._emptied = asyncio.Event()
        # Whether every message published anywhere reaches this process now, and how many
        # times that began: a listener that keeps state between messages (a cache) trusts it
        # only while `connected`, and only from the current `epoch` (what came before a
        # reconnection may have missed messages). In-process fan-out misses nothing.
        self.connected = True
        self.epoch = 0
        RUNNING.add(self)

    async def start(self) -> None:
        """Start what the implementation needs to receive messages (nothing locally)."""

    async def close(self) -> None:
        """Release connections (nothing locally)."""

    async def publish(self, channel: str, message: dict[str, Any], *, keep: bool = True) -> str:
        raise NotImplementedError

    async def history(self, channel: str, after: str, limit: int) -> list[Delivery] | None:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def subscribe(
        self,
        channels: Iterable[str],
        capacity: int = DEFAULT_CAPACITY,
        on_overflow: Callable[[], None] | None = None,
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels, capacity, on_overflow)
        if self.draining is not None:
            subscription.end(self.draining)
        for channel in subscription.channels:
            self._subscribers.setdefault(channel, set()).add(subscription)
        try:
            yield subscription
        finally:
            for channel in subscription.channels:
                listeners = self._subscribers.get(channel)
                if listeners is not None:
                    listeners.discard(subscription)
                    if not listeners:
                        del self._subscribers[channel]
            if not self._subscribers:
                self._emptied.set()

    async def drain(self, reason: str, grace_seconds: float = 5.0) -> None:
        """End every subscription (their consumers close their clients, saying why) and wait,
        up to the grace period, until they have gone: streams never hold up a shutdown."""
        self.draining = reason
        for listeners in list(self._subscribers.values()):
            for subscription in list(listeners):
                subscription.end(reason)
        if self._subscribers:
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    await self._emptied.wait()

    def subscriber_count(self) -> int:
        return len({id(s) for listeners in self._subscribers.values() for s in listeners})

    def _dispatch(self, delivery: Delivery) -> None:
        for subscription in tuple(self._subscribers.get(delivery.channel, ())):
            subscription.offer(delivery)


class ChannelListener:
    """A component's standing subscription to one channel, for state kept between messages
    (a cache that an announcement invalidates): the one place that resubscribes.

    Each delivery goes to `on_message`. Whenever messages may have been missed, `on_gap` is
    called so the state is dropped rather than trusted: the subscription overflowed, the handler
    raised (logged), or the broadcaster reconnected (a new `epoch`: pub/sub lost what was
    published meanwhile). After an overflow or a failure it subscribes again after a pause that
    doubles up to MAX_PAUSE_SECONDS (a handler failing on every message must not spin), and is
    not `listening` until then. It stops when the broadcaster drains (the server is stopping).
    """

    FIRST_PAUSE_SECONDS = 0.05
    MAX_PAUSE_SECONDS = 5.0
    # How often an idle listener looks at the broadcaster's epoch.
    WAKE_SECONDS = 5.0

    def __init__(
        self,
        broadcaster: Broadcaster,
        channel: str,
        *,
        on_message: Callable[[Delivery], None],
        on_gap: Callable[[], None],
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self._broadcaster = broadcaster
        self._channel = channel
        self._on_message = on_message
        self._on_gap = on_gap
        self._capacity = capacity
        self._task: asyncio.Task[None] | None = None
        self._heard = 0
        # Subscribed now: every message published from here on reaches `on_message`.
        self.listening = False

    @property
    def stopped(self) -> bool:
        return self._task is not None and self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"listen:{self._channel}")

    async def close(self, timeout_seconds: float = 5.0) -> None:
        self.listening = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=timeout_seconds)
            self._task = None

    async def _run(self) -> None:
        pause = self.FIRST_PAUSE_SECONDS
        while True:
            heard_before = self._heard
            try:
                if await self._listen():
                    return  # the broadcaster drained: the server is stopping
            except Exception as error:  # a handler's bug must not leave the state unheard
                log.warning("broadcast.listener_failed", channel=self._channel, error=repr(error))
            finally:
                self.listening = False
            self._on_gap()
            if self._heard > heard_before + 1:
                pause = self.FIRST_PAUSE_SECONDS  # it had been working: a new problem
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.MAX_PAUSE_SECONDS)

    async def _listen(self) -> bool:
        """Listen until the subscription ends (True) or overflows (False)."""
        async with self._broadcaster.subscribe([self._channel], self._capacity) as subscription:
            self.listening = subscription.ended is None
            epoch = self._broadcaster.epoch
            while subscription.ended is None and not subscription.overflowed:
                delivery = await subscription.next(wait_seconds=self.WAKE_SECONDS)
                if self._broadcaster.epoch != epoch:
                    epoch = self._broadcaster.epoch
                    self._on_gap()
                if delivery is not None:
                    self._on_message(delivery)
                    self._heard += 1
            return subscription.ended is not None


class LocalBroadcaster(Broadcaster):
    """In-process fan-out with a bounded history per channel (the embedded default)."""

    # Channels whose history is kept; the least recently published beyond this are forgotten.
    MAX_CHANNELS = 10_000

    def __init__(self, history_size: int = 100) -> None:
        super().__init__(history_size)
        self._counter = 0
        self._history: OrderedDict[str, deque[Delivery]] = OrderedDict()

    async def publish(self, channel: str, message: dict[str, Any], *, keep: bool = True) -> str:
        message_id = ""
        if keep:
            self._counter += 1
            message_id = f"{self._counter}-0"
            kept = self._history.pop(channel, None) or deque(maxlen=self.history_size)
            self._history[channel] = kept  # most recently published last
            if len(self._history) > self.MAX_CHANNELS:
                self._history.popitem(last=False)
        delivery = Delivery(channel, message_id, message, orjson.dumps(message).decode())
        if keep:
            kept.append(delivery)
        self._dispatch(delivery)
        return message_id

    async def history(self, channel: str, after: str, limit: int) -> list[Delivery] | None:
        position = id_order(after)
        if position is None:
            return None
        kept = list(self._history.get(channel, ()))
        newer = [d for d in kept if (id_order(d.id) or (0, 0)) > position]
        # Ids are process-wide, not per channel: a gap shows only as "older than the oldest
        # kept" once the deque is full (it has dropped something).
        dropped = len(kept) == self.history_size
        if dropped and kept and (id_order(kept[0].id) or (0, 0)) > position:
            return None
        if position[0] > self._counter:
            return None  # an id from another process's life: it cannot be resumed
        return newer[:limit]


# Append to the capped stream and publish in one step: the order of history is the order of
# live delivery, whichever instance publishes.
_PUBLISH_KEPT = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. ARGV[1])
return id
"""


# Store values, then announce on a channel (never kept), in one step: whoever hears the
# announcement and reads the values gets the new ones. KEYS: the values' keys, then the live
# channel; ARGV: the TTL in seconds, the message, then one value per key.
_SET_THEN_ANNOUNCE = """
for i = 1, #KEYS - 1 do
  redis.call('SET', KEYS[i], ARGV[i + 2], 'EX', ARGV[1])
end
redis.call('PUBLISH', KEYS[#KEYS], '\\n' .. ARGV[2])
return #KEYS - 1
"""


# How long start-up waits for the subscription before serving without it.
READY_TIMEOUT_SECONDS = 2.0


class RedisBroadcaster(Broadcaster):
    """Fan-out across instances through Redis pub/sub, history in capped streams."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        history_size: int = 100,
        history_ttl_seconds: int = 86_400,
        timeout_seconds: float = 2.0,
    ) -> None:
        super().__init__(history_size)
        # Its own client, so the pub/sub connection is never one the requests wait for. Every
        # operation is bounded by SKILLTREE_REDIS_TIMEOUT_SECONDS (a publish to a Redis that
        # hangs fails and is logged by its caller; connecting and closing a connection give up
        # in time), except the reader's wait for the next message, which redis-py lets block.
        self._timeout = timeout_seconds
        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            health_check_interval=30,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )
        self.url = url
        self._prefix = prefix
        self._ttl_ms = history_ttl_seconds * 1000
        self._script = self._redis.register_script(_PUBLISH_KEPT)
        self._set_then_announce = self._redis.register_script(_SET_THEN_ANNOUNCE)
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.connected = False  # until the pattern subscription holds

    def _stream(self, channel: str) -> str:
        return f"{self._prefix}stream:{channel}"

    def _live(self, channel: str) -> str:
        return f"{self._prefix}live:{channel}"

    async def start(self) -> None:
        """Subscribe before serving, so nothing published right after start-up is missed; with
        Redis unreachable the service starts anyway (reads must not depend on fan-out) and the
        reader keeps reconnecting in the background."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="broadcast-reader")
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=READY_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("broadcast.not_ready", timeout_seconds=READY_TIMEOUT_SECONDS)

    async def close(self) -> None:
        """Stop reading and let go of the connections, in bounded time whatever Redis is doing
        (restarting, gone, accepting and never answering): a shutdown must not wait on it."""
        if self._reader is not None:
            self._reader.cancel()
            done, _ = await asyncio.wait({self._reader}, timeout=self._timeout)
            if not done:
                log.warning("broadcast.reader_not_stopped", timeout_seconds=self._timeout)
            self._reader = None
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.aclose()
        except (TimeoutError, RedisError, OSError) as error:
            log.warning("broadcast.close_failed", error=repr(error))

    async def publish(self, channel: str, message: dict[str, Any], *, keep: bool = True) -> str:
        payload = orjson.dumps(message).decode()
        if not keep:
            await self._redis.publish(self._live(channel), "\n" + payload)
            return ""
        keys = [self._stream(channel), self._live(channel)]
        message_id: str = await self._script(
            keys=keys, args=[payload, self.history_size, self._ttl_ms]
        )
        return message_id

    async def set_then_announce(
        self, values: dict[str, bytes], expire_seconds: int, channel: str, message: dict[str, Any]
    ) -> None:
        """SET each value (with a TTL) on this Redis, then `publish(channel, message,
        keep=False)`, in one round trip: the cache stores a namespace's new token and tells
        every instance to forget the old one (platform/cache.py)."""
        keys = [*values, self._live(channel)]
        args: list[bytes | str | int] = [expire_seconds, orjson.dumps(message).decode()]
        args += values.values()
        await self._set_then_announce(keys=keys, args=args)

    async def history(self, channel: str, after: str, limit: int) -> list[Delivery] | None:
        position = id_order(after)
        if position is None:
            return None
        key = self._stream(channel)
        try:
            info = await self._redis.xinfo_stream(key)
        except RedisError:
            return None  # no such stream: nothing kept (expired or never written)
        # Redis 7 remembers the newest id it trimmed: anything at or before it is gone.
        trimmed = id_order(str(info.get("max-deleted-entry-id", "0-0"))) or (0, 0)
        newest = id_order(str(info.get("last-generated-id", "0-0"))) or (0, 0)
        if trimmed > position or newest < position:
            return None
        entries: list[tuple[str, dict[str, str]]] = await self._redis.xrange(  # type: ignore[assignment]
            key, min=f"({after}", max="+", count=limit
        )
        return [
            Delivery(channel, str(entry_id), orjson.loads(fields["m"]), fields["m"])
            for entry_id, fields in entries
        ]

    async def _read(self) -> None:
        """One pattern subscription per process; reconnects with a pause when Redis fails."""
        pattern = f"{self._prefix}live:*"
        cut = len(self._prefix) + len("live:")
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(pattern)
                self.epoch += 1
                self.connected = True
                self._ready.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None or message.get("type") != "pmessage":
                        continue
                    message_id, _, payload = str(message["data"]).partition("\n")
                    channel = str(message["channel"])[cut:]
                    self._dispatch(Delivery(channel, message_id, orjson.loads(payload), payload))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, orjson.JSONDecodeError) as error:
                log.warning("broadcast.reader_failed", error=repr(error))
                await asyncio.sleep(1.0)
            finally:
                self.connected = False
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(self._timeout):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]


def build_broadcaster(realtime: RealtimeSettings, redis: RedisSettings) -> Broadcaster:
    """Through Redis when SKILLTREE_REDIS_URL is set (several instances), else in-process."""
    if redis.url is None:
        return LocalBroadcaster(history_size=realtime.history_size)
    return RedisBroadcaster(
        redis.url,
        f"{redis.key_prefix}rt:",
        history_size=realtime.history_size,
        timeout_seconds=redis.timeout_seconds,
    )
