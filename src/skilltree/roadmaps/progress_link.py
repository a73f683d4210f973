"""What the roadmaps domain asks of the learner's progress, supplied from outside.

Two roadmap routes touch the caller's progress: an import can record the file's ticked boxes,
and a fork can carry the forker's marks over. Progress already depends on roadmaps (it reads
their trees), so roadmaps may not import progress back: the progress domain supplies these two
functions when the app is built (`app.py`), and roadmaps calls them through this link.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.identity import Viewer
from skilltree.platform.clock import Clock


@dataclass(frozen=True)
class Writer:
    """Whose progress is written, and what the writes are stamped with (progress calls it
    its `Learner`: one shape on both sides of the link)."""

    user_id: int
    viewer: Viewer
    clock: Clock
    request_id: str | None = None


# (session, writer, roadmap slug, [(topic slug, status)]) -> how many marks changed
ApplyMarks = Callable[[AsyncSession, Writer, str, Sequence[tuple[str, str]]], Awaitable[int]]
# (session, writer, from roadmap slug, to roadmap slug)
CarryOver = Callable[[AsyncSession, Writer, str, str], Awaitable[None]]


@dataclass
class ProgressLink:
    apply_marks: ApplyMarks | None = None
    carry_over: CarryOver | None = None


LINK = ProgressLink()


def link_progress(apply_marks: ApplyMarks, carry_over: CarryOver) -> None:
    """Called once where the app and the command line are built."""
    LINK.apply_marks = apply_marks
    LINK.carry_over = carry_over


async def apply_marks(
    session: AsyncSession, writer: Writer, slug: str, marks: Sequence[tuple[str, str]]
) -> int:
    if LINK.apply_marks is None:
        raise RuntimeError("progress is not linked to roadmaps (link_progress)")
    return await LINK.apply_marks(session, writer, slug, marks)


async def carry_over(session: AsyncSession, writer: Writer, from_slug: str, to_slug: str) -> None:
    if LINK.carry_over is None:
        raise RuntimeError("progress is not linked to roadmaps (link_progress)")
    await LINK.carry_over(session, writer, from_slug, to_slug)
