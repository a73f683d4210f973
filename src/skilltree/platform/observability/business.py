"""Business counters move only for work that was committed: a sign-up rolled back by a later
failure in the same request is not a sign-up."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.db import after_commit


class Incrementable(Protocol):
    def inc(self, amount: float = 1) -> None: ...


def count_on_commit(session: AsyncSession, counter: Incrementable) -> None:
    """Add one to `counter` once the session's unit of work commits."""

    async def increment() -> None:
        counter.inc()

    after_commit(session, increment)
