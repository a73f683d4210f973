"""Cursor pagination: tamper-proof cursors, and keyset pages that stay exact under inserts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from skilltree.platform.pagination import CursorCodec, InvalidCursor, Position
from skilltree.reviews import service as reviews
from skilltree.reviews.models import ReviewCard
from tests.support.rows import EPOCH, make_roadmap, make_user

codec = CursorCodec(SecretStr("test-secret"))


def test_a_cursor_round_trips_its_position() -> None:
    position = Position("next", EPOCH, 42)

    assert codec.decode("list:1", codec.encode("list:1", position)) == position


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1],  # truncated signature
        lambda c: c.split(".")[0],  # no signature at all
        lambda c: "x" + c,  # payload changed
        lambda c: c.replace(".", ".A", 1),  # signature changed
        lambda c: "",
        lambda c: "....",
        lambda c: "🙂." + c.split(".")[1],
        lambda c: c.split(".")[0] + ".é",  # a signature beyond ASCII
        lambda c: "é.é",
    ],
)
def test_a_tampered_cursor_is_refused(tamper: Callable[[str], str]) -> None:
    cursor = codec.encode("list:1", Position("next", 7, 3))

    with pytest.raises(InvalidCursor):
        codec.decode("list:1", tamper(cursor))


def test_a_cursor_is_valid_only_for_the_list_it_came_from() -> None:
    cursor = codec.encode("reviews-due:1", Position("next", 7, 3))

    with pytest.raises(InvalidCursor):
        codec.decode("reviews-due:2", cursor)


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    other = CursorCodec(SecretStr("another-secret"))

    with pytest.raises(InvalidCursor):
        codec.decode("list:1", other.encode("list:1", Position("next", 7, 3)))


async def add_card(session: AsyncSession, user_id: int, topic_id: int, minutes: int) -> int:
    due = EPOCH + timedelta(minutes=minutes)
    card = ReviewCard(user_id=user_id, topic_id=topic_id, due=due, fsrs_card={}, created_at=EPOCH)
    session.add(card)
    await session.flush()
    return card.id


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    existing=st.lists(st.integers(0, 50), min_size=0, max_size=30),
    inserted=st.lists(st.lists(st.integers(0, 50), max_size=3), max_size=12),
    page_size=st.integers(1, 7),
)
async def test_walking_every_page_returns_every_row_once_in_order_while_rows_are_inserted(
    session: AsyncSession, existing: list[int], inserted: list[list[int]], page_size: int
) -> None:
    user = await make_user(session)
    _, (topic,) = await make_roadmap(session, 1)
    before = {await add_card(session, user.id, topic.id, minutes) for minutes in existing}
    now = EPOCH + timedelta(days=1)  # everything is due
    scope = f"reviews-due:{user.id}"

    seen: list[tuple[object, int]] = []
    cursor: str | None = None
    for step in range(len(before) + len(inserted) * 3 + 2):
        position = codec.decode(scope, cursor) if cursor else None
        page = await reviews.due_cards(session, user.id, now, position, page_size)
        seen.extend((item.card.due, item.card.id) for item in page.items)
        # Another learner's session adds cards (anywhere in the order) between two pages.
        for minutes in inserted[step] if step < len(inserted) else []:
            await add_card(session, user.id, topic.id, minutes)
        if page.next is None:
            break
        cursor = codec.encode(scope, page.next)

    ids = [card_id for _, card_id in seen]
    assert len(ids) == len(set(ids)), "a row appeared on two pages"
    assert seen == sorted(seen), "pages are out of order"
    assert before <= set(ids), "a row that existed all along was skipped"
