"""Background work, wired in one place: every task, cron job, event consumer, clean-up and the
hooks one domain supplies to another. `create_app` and the worker call `wire_background()` when
they are built, so what runs never depends on which module happened to be imported first.

A task name the worker does not know would be acknowledged and dropped: a new task is added here.
"""

from __future__ import annotations

from functools import cache


@cache
def wire_background() -> None:
    """Register everything once per process (later calls do nothing)."""
    # Modules declaring tasks and cron jobs (`@task`, `@cron_task`: a name bound to a handler).
    from skilltree.accounts import cleanup as accounts_cleanup
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
