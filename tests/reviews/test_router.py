"""Spaced repetition as a learner sees it: done topics come due, ratings reschedule them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from skilltree.platform.clock import FrozenClock
from skilltree.reviews import repository
from skilltree.reviews.schemas import DueListOut
from tests.support.accounts import Browser
from tests.support.progress import People, mark, use_api_key
from tests.support.queries import count_statements


async def due(learner: Browser, **params: Any) -> dict[str, Any]:
    response = await learner.client.get("/v1/me/reviews/due", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def rate(learner: Browser, card_id: int, rating: str) -> Any:
    return await learner.client.post(
        f"/v1/me/reviews/{card_id}", json={"rating": rating}, headers=learner.write_headers
    )


async def test_a_done_topic_becomes_a_card_that_is_due(ada: Browser) -> None:
    await mark(ada, "etags", "done")

    (card,) = (await due(ada))["items"]

    assert (card["roadmap"], card["topic"], card["title"]) == ("web", "etags", "ETags")
    assert card["links"]["topic"] == "/v1/roadmaps/web/topics/etags"


async def test_topics_not_done_have_no_card(ada: Browser) -> None:
    await mark(ada, "etags", "in_progress")
    await mark(ada, "indexes", "skipped")

    assert (await due(ada))["items"] == []


@pytest.mark.parametrize("rating", ["again", "hard", "good", "easy"])
async def test_a_rating_schedules_the_next_review_in_the_future(
    ada: Browser, clock: FrozenClock, rating: str
) -> None:
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]

    response = await rate(ada, card["id"], rating)

    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["due"]) > clock.now()
    assert (await due(ada))["items"] == []


async def test_easy_pushes_the_next_review_further_than_again(
    people: People, clock: FrozenClock
) -> None:
    results = {}
    for name, rating in (("Ann", "again"), ("Eli", "easy")):
        learner = await people(name)
        await learner.client.post(
            "/v1/roadmaps/import",
            json={"slug": f"r-{rating}", "title": "R", "topics": [{"slug": "t", "title": "T"}]},
            headers=learner.write_headers,
        )
        await mark(learner, "t", "done", roadmap=f"r-{rating}")
        (card,) = (await due(learner))["items"]
        results[rating] = datetime.fromisoformat(
            (await rate(learner, card["id"], rating)).json()["due"]
        )

    assert results["again"] < results["easy"]


async def test_a_card_comes_due_again_when_its_time_comes(ada: Browser, clock: FrozenClock) -> None:
    await use_api_key(ada)
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]
    next_due = datetime.fromisoformat((await rate(ada, card["id"], "good")).json()["due"])

    clock.advance(seconds=(next_due - clock.now()).total_seconds())

    assert [c["id"] for c in (await due(ada))["items"]] == [card["id"]]


async def test_setting_a_topic_back_to_todo_retires_its_card(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]

    await mark(ada, "etags", "todo")

    assert (await due(ada))["items"] == []
    response = await rate(ada, card["id"], "good")
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/card-not-found"


async def test_undoing_a_done_retires_the_card_it_made(ada: Browser) -> None:
    await mark(ada, "etags", "done")

    await ada.client.post("/v1/me/progress/web/undo", headers=ada.write_headers)

    assert (await due(ada))["items"] == []


async def test_a_retried_rating_with_the_same_key_is_applied_once(
    ada: Browser, session: AsyncSession
) -> None:
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]
    headers = ada.write_headers | {"idempotency-key": "review-1"}

    first = await ada.client.post(
        f"/v1/me/reviews/{card['id']}", json={"rating": "good"}, headers=headers
    )
    retry = await ada.client.post(
        f"/v1/me/reviews/{card['id']}", json={"rating": "good"}, headers=headers
    )

    assert first.status_code == retry.status_code == 200
    assert retry.headers["idempotency-replayed"] == "true"
    assert retry.content == first.content
    assert len(await repository.log_of(session, card["id"])) == 1


async def test_a_bad_rating_is_a_422_problem(ada: Browser) -> None:
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]

    response = await rate(ada, card["id"], "perfect")

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.rating"
    assert len((await due(ada))["items"]) == 1


async def test_nobody_reviews_or_sees_anothers_cards(ada: Browser, people: People) -> None:
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]
    bob = await people("Bob")

    assert (await due(bob))["items"] == []
    assert (await rate(bob, card["id"], "easy")).status_code == 404
    assert len((await due(ada))["items"]) == 1


async def test_the_due_queue_is_oldest_first_and_paged_with_links(
    ada: Browser, clock: FrozenClock
) -> None:
    await use_api_key(ada)
    for topic in ("etags", "indexes", "status-codes", "cache-control"):
        await mark(ada, topic, "done")
        clock.advance(minutes=1)

    first = await ada.client.get("/v1/me/reviews/due", params={"limit": 3})
    second = await ada.client.get(first.json()["links"]["next"])
    back = await ada.client.get(second.json()["links"]["prev"])

    assert [c["topic"] for c in first.json()["items"]] == ["etags", "indexes", "status-codes"]
    assert 'rel="next"' in first.headers["link"]
    assert [c["topic"] for c in second.json()["items"]] == ["cache-control"]
    assert second.json()["links"]["next"] is None
    assert [c["topic"] for c in back.json()["items"]] == ["etags", "indexes", "status-codes"]


async def test_a_cursor_from_someone_else_is_a_400_problem(
    ada: Browser, people: People, clock: FrozenClock
) -> None:
    await use_api_key(ada)
    for topic in ("etags", "indexes"):
        await mark(ada, topic, "done")
    next_link = (await due(ada, limit=1))["links"]["next"]
    bob = await people("Bob")

    response = await bob.client.get(next_link)

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-cursor"


async def test_a_cursor_beyond_ascii_is_an_invalid_cursor_not_an_error(ada: Browser) -> None:
    await use_api_key(ada)

    response = await ada.client.get("/v1/me/reviews/due", params={"cursor": "abc.é"})

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-cursor"


async def test_every_review_is_kept_in_the_log(
    ada: Browser, clock: FrozenClock, session: AsyncSession
) -> None:
    await use_api_key(ada)
    await mark(ada, "etags", "done")
    (card,) = (await due(ada))["items"]
    first = (await rate(ada, card["id"], "hard")).json()
    clock.advance(seconds=(datetime.fromisoformat(first["due"]) - clock.now()).total_seconds())
    await rate(ada, card["id"], "good")

    log = await repository.log_of(session, card["id"])

    assert [entry.rating for entry in log] == ["hard", "good"]
    assert log[0].due_after == datetime.fromisoformat(first["due"])
    assert log[1].due_before == log[0].due_after


async def test_the_due_list_reads_only_the_columns_it_shows(
    ada: Browser, engine: AsyncEngine
) -> None:
    for topic in ("etags", "indexes"):
        await mark(ada, topic, "done")

    with count_statements(engine) as log:
        listed = await due(ada)

    card_reads = [s for s in log.statements if "FROM review_cards" in s]
    assert len(listed["items"]) == 2
    assert card_reads
    # The first page, made to be kept (decision 0082): the roadmaps the learner's cards are
    # on, the page of cards with their topics' labels, how their roadmap is held, and when the
    # next card comes due.
    assert log.count == 4, log.statements
    # The scheduler's state (a JSON document per card) is read only to rate a card.
    assert not any("fsrs_card" in statement for statement in card_reads)


async def test_every_page_of_the_due_list_is_one_statement(
    ada: Browser, engine: AsyncEngine, clock: FrozenClock
) -> None:
    await use_api_key(ada)
    for topic in ("etags", "indexes", "status-codes"):
        await mark(ada, topic, "done")
        clock.advance(minutes=1)
    first = await due(ada, limit=1)

    with count_statements(engine) as log:
        second = await ada.client.get(first["links"]["next"])
        back = await ada.client.get(second.json()["links"]["prev"])

    assert [c["topic"] for c in second.json()["items"]] == ["indexes"]
    assert [c["topic"] for c in back.json()["items"]] == ["etags"]
    assert [c["title"] for c in back.json()["items"]] == ["ETags"]
    assert log.count == 2, log.statements


@pytest.mark.parametrize(
    "engine", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
async def test_postgresql_reads_each_due_page_in_index_order_instead_of_sorting_the_queue(
    ada: Browser, engine: AsyncEngine, clock: FrozenClock
) -> None:
    """A learner with thousands of cards due gets the oldest page without every due card
    being read and sorted: the plan of each page's statement has no sort."""
    await use_api_key(ada)
    for topic in ("etags", "indexes", "status-codes"):
        await mark(ada, topic, "done")
        clock.advance(minutes=1)
    pages: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "FROM review_cards" in statement:
            pages.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        first = await due(ada, limit=1)
        second = await ada.client.get(first["links"]["next"])
        await ada.client.get(second.json()["links"]["prev"])
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)

    assert len(pages) == 3
    async with engine.connect() as connection:
        # Three cards fit in a page of the table: without this the planner reads the table
        # whole whatever the statement, and the plan would say nothing about the index.
        await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in pages:
            plan = (await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)).all()
            lines = [line for (line,) in plan]
            assert any("ix_review_cards_user_due" in line for line in lines), lines
            assert not any("Sort" in line for line in lines), lines


async def test_the_due_list_is_the_json_of_its_model_byte_for_byte(
    ada: Browser, clock: FrozenClock
) -> None:
    title = 'Quotes " and \\ back\tslash, “curly” – ü 😀 </script>'
    await ada.client.post(
        "/v1/roadmaps/import",
        json={"slug": "odd", "title": "Odd", "topics": [{"slug": "t", "title": title}]},
        headers=ada.write_headers,
    )
    await mark(ada, "t", "done", roadmap="odd")
    clock.advance(seconds=1.5)  # a due time with microseconds, and one without
    await mark(ada, "etags", "done")

    response = await ada.client.get("/v1/me/reviews/due", params={"limit": 1})

    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "private, no-store"
    assert 'rel="next"' in response.headers["link"]
    assert response.json()["items"][0]["title"] == title
    model = DueListOut.model_validate_json(response.content)
    assert response.content == model.model_dump_json().encode()
