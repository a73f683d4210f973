"""The progress section of the weekly digest e-mail (notifications.tasks asks every source)."""

from __future__ import annotations

from datetime import datetime
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.notifications.tasks import DIGEST_SOURCES, DigestSection
from skilltree.progress import repository
from skilltree.roadmaps import service as roadmaps

# A digest line names at most this many topics, then says how many more.
TOPICS_PER_LINE = 5


async def week_of_progress(
    session: AsyncSession, user_id: int, since: datetime, until: datetime
) -> DigestSection | None:
    """What the learner finished this week, per roadmap; None for a week without any."""
    done = await repository.done_between(session, user_id, since, until)
    if not done:
        return None
    # Per roadmap (in the order of their titles), each roadmap's topics in the order finished.
    labelled = await roadmaps.titles_by_roadmap(session, done)
    rank = {roadmap: place for place, (_, roadmap, _) in reversed(list(enumerate(labelled)))}
    named = {topic_id: (roadmap, topic) for topic_id, roadmap, topic in labelled}
    finished = sorted(
        (named[topic_id] for topic_id in done if topic_id in named),
        key=lambda pair: rank[pair[0]],
    )
    if not finished:
        return None
    lines = []
    for roadmap, rows in groupby(finished, key=lambda row: row[0]):
        titles = [topic for _, topic in rows]
        shown = ", ".join(titles[:TOPICS_PER_LINE])
        more = f" and {len(titles) - TOPICS_PER_LINE} more" if len(titles) > TOPICS_PER_LINE else ""
        lines.append(f"{roadmap}: {len(titles)} done — {shown}{more}")
    return DigestSection(title="Your week", lines=lines)


DIGEST_SOURCES["progress"] = week_of_progress
