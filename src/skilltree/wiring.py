"""Background work, wired in one place: every task, cron job, event consumer, clean-up and the
hooks one domain supplies to another. `create_app` and the worker call `wire_background()` when
they are built, so what runs never depends on which module happened to be imported first.

A task name the worker does not know would be acknowledged and dropped: a new task is added here.

The resources every server shares (`open_resources`) are opened here too, for the same reason:
the HTTP app's lifespan and `skilltree grpc` get the same set, set up and closed alike.
Everything is imported inside the functions: the CLI imports this module on its fast path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from skilltree.platform.clock import Clock
    from skilltree.platform.config import Settings
    from skilltree.platform.db import Database
    from skilltree.platform.state import Resources


@asynccontextmanager
async def open_resources(
    settings: Settings,
    *,
    redis: Redis | None,
    database: Database | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Resources]:
    """What a server's requests use: the database and the cache its commits invalidate, the
    queue, the mailer, Redis, and the live fan-out that committed changes are pushed on. All
    closed on exit, `redis` included; a `database` passed in (a test's) is left to its owner."""
    import skilltree.models  # noqa: F401  (every table, so cross-domain foreign keys resolve)
    from skilltree.platform.broadcast import build_broadcaster
    from skilltree.platform.cache import Cache
    from skilltree.platform.clock import SystemClock
    from skilltree.platform.db import Database
    from skilltree.platform.observability.tracing import instrument_database
    from skilltree.platform.queue.client import build_queue
    from skilltree.platform.state import Resources
    from skilltree.platform.transactional_mail import transactional_mailer
    from skilltree.progress import service as progress_service
    from skilltree.realtime.live import LiveProjector
    from skilltree.roadmaps.progress_link import link_progress

    # Roadmap imports and forks write the caller's progress through this link (no cycle).
    link_progress(progress_service.apply_marks_for, progress_service.carry_over_for)
    owned = database is None
    db = database or Database.from_settings(settings.database)
    instrument_database(db, settings.tracing)
    clock = clock or SystemClock()
    queue = build_queue(settings.queue, db, clock)
    # Live fan-out (streams, rooms); committed events become feed lines and live pushes.
    broadcaster = build_broadcaster(settings.realtime, settings.redis)
    await broadcaster.start()
    shared_cache = Cache.from_settings(settings.cache, settings.redis, broadcaster)
    # What a unit of work marks stale is invalidated once it commits (requests and tasks),
    # and every instance hears of it: local hits then need no Redis round trip.
    db.on_every_unit_of_work(shared_cache.bind)
    await shared_cache.listen(broadcaster)
    projector = LiveProjector(db, broadcaster, clock)
    db.on_every_unit_of_work(projector.bind)
    try:
        yield Resources(
            settings=settings,
            database=db,
            clock=clock,
            mailer=transactional_mailer(settings.mail, db, clock, queue),
            queue=queue,
            redis=redis,
            cache=shared_cache,
            broadcaster=broadcaster,
        )
    finally:
        db.remove_unit_of_work_hook(projector.bind)
        db.remove_unit_of_work_hook(shared_cache.bind)
        await shared_cache.close()  # stops listening before the fan-out closes
        await broadcaster.close()
        await queue.close()
        if redis is not None:
            await redis.aclose()
        if owned:
            await db.dispose()


@cache
def wire_background() -> None:
    """Register everything once per process (later calls do nothing)."""
    # Modules declaring tasks and cron jobs (`@task`, `@cron_task`: a name bound to a handler).
    from skilltree.accounts import cleanup as accounts_cleanup
    from skilltree.cohorts import tasks as cohorts  # noqa: F401  (feed consumer, reminders)
    from skilltree.files import tasks as files_tasks
    from skilltree.notifications import tasks as notifications
    from skilltree.platform import events, mail_transport, maintenance  # noqa: F401
    from skilltree.progress import digest as progress_digest
    from skilltree.reviews import reminders as review_reminders
    from skilltree.search import tasks as search_tasks
    from skilltree.webhooks import tasks as webhooks

    events.subscribe(webhooks.FAN_OUT, webhooks.fan_out)
    search_tasks.subscribe()
    files_tasks.subscribe()
    maintenance.add_cleanup("accounts.expired-sessions", accounts_cleanup.expired_sessions)
    maintenance.add_cleanup("accounts.expired-tokens", accounts_cleanup.expired_tokens)
    notifications.add_digest_source("progress", progress_digest.week_of_progress)
    notifications.add_reminder_source("reviews", review_reminders.due_reviews)
