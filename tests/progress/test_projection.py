"""Property: whatever a learner does, replaying the event log yields the projection."""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.clock import FrozenClock
from skilltree.progress import service
from skilltree.progress.errors import NothingToUndo
from skilltree.progress.rollup import STATUSES
from skilltree.roadmaps.policies import Viewer
from tests.support.rows import make_roadmap, make_user

TOPICS = 4
# An action is a status change (topic index, status, confidence) or None for "undo".
actions = st.lists(
    st.one_of(
        st.none(),
        st.tuples(
            st.integers(0, TOPICS - 1),
            st.sampled_from(STATUSES),
            st.one_of(st.none(), st.integers(1, 5)),
        ),
    ),
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=actions)
async def test_replaying_the_log_always_yields_the_projection(
    session: AsyncSession, steps: list[tuple[int, str, int | None] | None]
) -> None:
    user = await make_user(session)
    roadmap, topics = await make_roadmap(session, TOPICS)
    clock = FrozenClock()
    learner = service.Learner(user_id=user.id, viewer=Viewer(user_id=user.id), clock=clock)

    for step in steps:
        clock.advance(seconds=1)
        if step is None:
            with contextlib.suppress(NothingToUndo):
                await service.undo_last(session, learner, roadmap.slug)
        else:
            index, status, confidence = step
            await service.set_status(
                session,
                learner,
                roadmap.slug,
                topics[index].slug,
                status,
                confidence,
            )

    assert await service.replay(session, user.id) == await service.projection(session, user.id)
