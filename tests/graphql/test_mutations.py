"""GraphQL writes: the REST API's changes, through the same services, all or nothing."""

from __future__ import annotations

from tests.support.accounts import Browser
from tests.support.graphql import as_learner, problem_types
from tests.support.progress import by_slug

SET_DONE = 'setStatus(roadmap: "web", topic: "etags", status: "done", confidence: 4)'


async def status_of(learner: Browser, topic: str) -> str:
    progress = (await learner.client.get("/v1/me/progress/web")).json()
    return str(by_slug(progress["topics"])[topic]["status"])


async def test_setting_a_status_is_what_rest_reads_back(ada: Browser) -> None:
    body = await as_learner(ada, f"mutation {{ {SET_DONE} {{ topic status confidence }} }}")

    assert body["data"] == {"setStatus": {"topic": "etags", "status": "done", "confidence": 4}}
    assert await status_of(ada, "etags") == "done"


async def test_undo_reverts_the_newest_change(ada: Browser) -> None:
    # toStatus is null: the topic had no mark before, which reads as todo.
    await as_learner(ada, f"mutation {{ {SET_DONE} {{ status }} }}")

    body = await as_learner(ada, 'mutation { undo(roadmap: "web") { topic fromStatus toStatus } }')
    nothing_left = await as_learner(ada, 'mutation { undo(roadmap: "web") { topic } }')

    assert body["data"]["undo"] == {"topic": "etags", "fromStatus": "done", "toStatus": None}
    assert await status_of(ada, "etags") == "todo"
    assert nothing_left["errors"][0]["extensions"]["problem"]["status"] == 409


async def test_a_document_with_a_failing_mutation_changes_nothing(ada: Browser) -> None:
    body = await as_learner(
        ada,
        f"""mutation {{
            first: {SET_DONE} {{ status }}
            second: setStatus(roadmap: "web", topic: "no-such-topic", status: "done") {{ status }}
        }}""",
    )

    assert problem_types(body) == ["/problems/topic-not-found"]
    assert await status_of(ada, "etags") == "todo"


async def test_replacing_a_note_needs_the_time_it_was_read(ada: Browser) -> None:
    save = """mutation($markdown: String!, $at: DateTime) {
        saveNote(roadmap: "web", topic: "etags", markdown: $markdown, ifUpdatedAt: $at)
        { markdown updatedAt } }"""

    first = await as_learner(ada, save, {"markdown": "one"})
    blind = await as_learner(ada, save, {"markdown": "two"})
    stale = await as_learner(ada, save, {"markdown": "two", "at": "2001-01-01T00:00:00+00:00"})
    read_at = first["data"]["saveNote"]["updatedAt"]
    replaced = await as_learner(ada, save, {"markdown": "two", "at": read_at})

    assert first["data"]["saveNote"]["markdown"] == "one"
    assert problem_types(blind) == ["/problems/precondition-required"]
    assert problem_types(stale) == ["/problems/precondition-failed"]
    assert replaced["data"]["saveNote"]["markdown"] == "two"
    note = await ada.client.get("/v1/me/progress/web/etags/note")
    assert note.json()["markdown"] == "two"


async def test_rating_a_due_card_schedules_it_later(ada: Browser) -> None:
    await as_learner(ada, f"mutation {{ {SET_DONE} {{ status }} }}")
    due = await as_learner(ada, "{ me { reviewsDue { id topic } } }")
    card = due["data"]["me"]["reviewsDue"][0]

    body = await as_learner(
        ada, f'mutation {{ reviewCard(cardId: {card["id"]}, rating: "good") {{ id rating due }} }}'
    )
    after = await as_learner(ada, "{ me { reviewsDue { id } } }")

    assert card["topic"] == "etags"
    assert body["data"]["reviewCard"]["rating"] == "good"
    assert after["data"]["me"]["reviewsDue"] == []


async def test_a_mutation_is_refused_over_get(ada: Browser) -> None:
    response = await ada.client.get(
        "/graphql", params={"query": f"mutation {{ {SET_DONE} {{ status }} }}"}
    )

    assert response.status_code == 400
    assert await status_of(ada, "etags") == "todo"
