"""The due list's JSON, written without a model per card, is the model's JSON byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from skilltree.platform.http.pagination import PageLinks
from skilltree.reviews.schemas import DueCardOut, DueListOut, due_list_json

# Text as the database hands it back: any character but a lone surrogate, which UTF-8 cannot
# hold (control characters, quotes, backslashes, non-ASCII and emoji included).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
OPTIONAL_TEXT = st.none() | TEXT
UTC_TIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


def card(
    id: int, due: datetime, roadmap: str | None, topic: str | None, title: str | None, links: Any
) -> dict[str, Any]:
    """A card as the route hands it over: DueCardOut's fields, in the model's order."""
    return {
        "id": id,
        "due": due,
        "roadmap": roadmap,
        "topic": topic,
        "title": title,
        "links": links,
    }


CARD = st.builds(
    card,
    id=st.integers(1, 2**31 - 1),
    due=UTC_TIMES,
    roadmap=OPTIONAL_TEXT,
    topic=OPTIONAL_TEXT,
    title=OPTIONAL_TEXT,
    links=st.dictionaries(st.sampled_from(["review", "topic"]), TEXT),
)
LINKS = st.builds(PageLinks, self=TEXT, next=OPTIONAL_TEXT, prev=OPTIONAL_TEXT)


@given(items=st.lists(CARD, max_size=5), links=LINKS)
def test_the_due_lists_json_is_the_bytes_of_its_model(
    items: list[dict[str, Any]], links: PageLinks
) -> None:
    model = DueListOut(items=[DueCardOut(**item) for item in items], links=links)

    assert due_list_json(items, links) == model.model_dump_json().encode()
