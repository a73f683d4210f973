"""Every kind of background task, registered by importing the modules that declare them.

The worker imports this module before it starts, as the app and CLI import models.py: a task
name the worker does not know would be acknowledged and dropped.
"""

from skilltree.accounts import cleanup as accounts_cleanup
from skilltree.files import tasks as files_tasks
from skilltree.notifications import tasks as notifications
from skilltree.platform import events, mail_transport, maintenance
from skilltree.platform.queue.tasks import REGISTRY
from skilltree.progress import digest as progress_digest
from skilltree.reviews import reminders as review_reminders
from skilltree.search import tasks as search_tasks
from skilltree.webhooks import tasks as webhooks

__all__ = [
    "REGISTRY",
    "accounts_cleanup",
    "events",
    "files_tasks",
    "mail_transport",
    "maintenance",
    "notifications",
    "progress_digest",
    "review_reminders",
    "search_tasks",
    "webhooks",
]

# Event consumers are subscribed here, where the worker's task set is assembled.
search_tasks.subscribe()
files_tasks.subscribe()
