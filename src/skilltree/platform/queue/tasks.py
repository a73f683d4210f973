"""The task registry: every kind of background work, its retry policy and its time limit.

Domains declare tasks with `@task("mail.send", retry=...)` in their `tasks.py`; the worker
registers them with the broker when it starts (nothing connects at import time). A task is an
async function of the job (its resources and attempt number) and one JSON payload.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from skilltree.platform.queue.retry import RetryPolicy
from skilltree.platform.state import Resources

Payload = dict[str, Any]


@dataclass(frozen=True)
class Job:
    """What a running task knows about itself."""

    resources: Resources
    task_id: str
    attempt: int
    max_attempts: int

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[Job, Payload], Awaitable[None]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    handler: Handler
    retry: RetryPolicy
    timeout_seconds: float


REGISTRY: dict[str, TaskSpec] = {}


def task(
    name: str, *, retry: RetryPolicy | None = None, timeout_seconds: float = 60.0
) -> Callable[[Handler], Handler]:
    """Declare a task. Its name is part of every queued message, so renaming one strands the
    messages already queued under the old name: add the new name and keep the old a while."""

    def register(handler: Handler) -> Handler:
        if name in REGISTRY and REGISTRY[name].handler is not handler:
            raise ValueError(f"task {name!r} is declared twice")
        REGISTRY[name] = TaskSpec(name, handler, retry or RetryPolicy(), timeout_seconds)
        return handler

    return register


def spec_of(name: str) -> TaskSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(f"no task named {name!r}") from None
