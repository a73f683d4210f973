"""The database broker's claim when the worker stops: a lease taken as the listener is being
stopped goes back to the queue at once, instead of hiding its message until the lease runs out.

A worker told to stop cancels the read it has in flight. With the database broker that read is
an UPDATE taking a lease: cancelled after the database committed it but before the message
reached the worker, the message would wait out the lease (minutes) before any worker ran it."""

from __future__ import annotations

import asyncio

import pytest
from taskiq import BrokerMessage

from skilltree.platform.clock import SystemClock
from skilltree.platform.db import Database
from skilltree.platform.queue.database_broker import Claim, DatabaseBroker


def _broker(database: Database) -> DatabaseBroker:
    return DatabaseBroker(
        database,
        SystemClock(),
        queue="test-claims",
        lease_seconds=600,
        poll_interval_seconds=0.01,
    )


async def _queued(broker: DatabaseBroker) -> None:
    await broker.kick(
        BrokerMessage(task_id="task-1", task_name="test.claimed", message=b"{}", labels={})
    )


async def test_a_lease_taken_as_the_listener_stops_is_handed_back(bg_database: Database) -> None:
    broker = _broker(bg_database)
    await _queued(broker)
    leased = asyncio.Event()
    answer = asyncio.Event()
    claim = broker.claim

    async def committed_then_slow_to_answer() -> Claim | None:
        # The lease is committed; the answer is still on its way back when the stop comes.
        claimed = await claim()
        leased.set()
        await answer.wait()
        return claimed

    broker.claim = committed_then_slow_to_answer  # type: ignore[method-assign]
    listener = broker.listen()
    reading = asyncio.create_task(anext(listener))
    await leased.wait()
    reading.cancel()  # the worker stops, as taskiq's receiver stops its read
    await asyncio.sleep(0)
    answer.set()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await listener.aclose()

    again = await claim()
    assert again is not None, "the message is hidden until its lease runs out"
    assert again.deliveries == 1  # the delivery that never reached a worker is not counted


async def test_a_stop_while_no_claim_is_in_flight_leaves_the_queue_as_it_was(
    bg_database: Database,
) -> None:
    broker = _broker(bg_database)
    listener = broker.listen()
    reading = asyncio.create_task(anext(listener))
    await asyncio.sleep(0.05)  # polling an empty queue
    await _queued(broker)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await listener.aclose()

    again = await broker.claim()
    assert again is not None
    assert again.deliveries == 1
