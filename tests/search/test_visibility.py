"""Nobody finds what they may not see: not in hits, not in counts, not in snippets.

Every roadmap below mentions "zebra", and each private one a word of its own. The rules are
conditions of the search statement itself, so a leak would show as an extra hit or count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.orgs.test_router import create_org, invite_and_join
from tests.search.conftest import (
    Indexer,
    People,
    import_roadmap,
    search,
    secret_roadmap,
    write_note,
)
from tests.support.accounts import Browser

SECRETS = ("aardvark", "narwhal", "okapi", "quokka", "wombat")


async def setup(people: People, outbox: Path, index_pending: Indexer) -> dict[str, Browser]:
    ada, bob, eve = await people("Ada"), await people("Bob"), await people("Eve")
    await create_org(ada)
    await invite_and_join(ada, bob, outbox, "learner", "bob@example.org")
    await import_roadmap(ada, secret_roadmap("zoo", "public"))
    await import_roadmap(ada, secret_roadmap("ada-private", "aardvark"), visibility="private")
    await import_roadmap(
        ada, secret_roadmap("cohort-plan", "narwhal"), visibility="organisation", org="cohort-7"
    )
    await import_roadmap(eve, secret_roadmap("eve-private", "okapi"), visibility="private")
    await write_note(eve, "zoo", "zoo-topic", "zebra stripes and a quokka, says Eve")
    await write_note(bob, "cohort-plan", "cohort-plan-topic", "zebra and a wombat, says Bob")
    await index_pending()
    return {"ada": ada, "bob": bob, "eve": eve}


def found(body: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((hit["kind"], hit["roadmap"]) for hit in body["items"])


async def test_each_caller_finds_exactly_what_they_may_see(
    people: People, outbox: Path, index_pending: Indexer, client: httpx.AsyncClient
) -> None:
    who = await setup(people, outbox, index_pending)

    anonymous = await search(client, "zebra")
    ada = await search(who["ada"].client, "zebra")
    bob = await search(who["bob"].client, "zebra")
    eve = await search(who["eve"].client, "zebra")

    assert found(anonymous) == [("topic", "zoo")]
    assert anonymous["counts"] == {"topic": 1}
    assert found(ada) == [("topic", "ada-private"), ("topic", "cohort-plan"), ("topic", "zoo")]
    assert ada["counts"] == {"topic": 3, "note": 0, "resource": 0}
    assert found(bob) == [("note", "cohort-plan"), ("topic", "cohort-plan"), ("topic", "zoo")]
    assert bob["counts"] == {"topic": 2, "note": 1, "resource": 0}
    assert found(eve) == [("note", "zoo"), ("topic", "eve-private"), ("topic", "zoo")]
    assert eve["counts"] == {"topic": 2, "note": 1, "resource": 0}
    for name, body, own in [
        ("anonymous", anonymous, ()),
        ("ada", ada, ("aardvark", "narwhal")),
        ("bob", bob, ("narwhal", "wombat")),
        ("eve", eve, ("okapi", "quokka")),
    ]:
        text = json.dumps(body).lower()
        assert [word for word in SECRETS if word in text and word not in own] == [], name


async def test_another_learners_words_find_nothing_and_count_nothing(
    people: People, outbox: Path, index_pending: Indexer, client: httpx.AsyncClient
) -> None:
    who = await setup(people, outbox, index_pending)

    for caller, word in [
        (who["eve"].client, "aardvark"),  # Ada's private roadmap
        (who["eve"].client, "narwhal"),  # the organisation's roadmap
        (who["eve"].client, "wombat"),  # Bob's note
        (who["bob"].client, "quokka"),  # Eve's note
        (who["ada"].client, "quokka"),
        (client, "okapi"),
    ]:
        for mode in ("words", "prefix"):
            body = await search(caller, word, mode=mode)
            assert body["items"] == [], (word, mode)
            assert set(body["counts"].values()) == {0}, (word, mode)


async def test_narrowing_to_a_roadmap_one_cannot_see_finds_nothing(
    people: People, outbox: Path, index_pending: Indexer
) -> None:
    who = await setup(people, outbox, index_pending)

    body = await search(who["eve"].client, "zebra", roadmap="ada-private")
    ada_own = await search(who["ada"].client, "zebra", roadmap="ada-private")

    assert body["items"] == []
    assert set(body["counts"].values()) == {0}
    assert found(ada_own) == [("topic", "ada-private")]


async def test_an_api_key_without_progress_read_finds_no_notes(
    people: People, outbox: Path, index_pending: Indexer
) -> None:
    who = await setup(people, outbox, index_pending)
    eve = who["eve"]
    created = await eve.client.post(
        "/v1/me/api-keys",
        json={"name": "roadmaps only", "scopes": ["roadmaps:write"]},
        headers=eve.write_headers,
    )
    assert created.status_code == 201, created.text
    transport = eve.client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as keyed:
        keyed.headers["authorization"] = f"Bearer {created.json()['key']}"
        body = await search(keyed, "zebra")

    assert found(body) == [("topic", "eve-private"), ("topic", "zoo")]
    assert body["counts"] == {"topic": 2}


async def test_a_learner_who_leaves_the_organisation_stops_finding_its_roadmap(
    people: People, outbox: Path, index_pending: Indexer
) -> None:
    who = await setup(people, outbox, index_pending)
    bob = who["bob"]
    bob_id = (await bob.client.get("/v1/me")).json()["id"]
    left = await who["ada"].client.delete(
        f"/v1/orgs/cohort-7/members/{bob_id}", headers=who["ada"].write_headers
    )
    assert left.status_code == 204, left.text

    body = await search(bob.client, "zebra")

    # Bob's own note stays his, but it hangs on a roadmap he can no longer see.
    assert found(body) == [("topic", "zoo")]
    assert "narwhal" not in json.dumps(body)


async def test_a_learner_finds_their_own_note_by_a_prefix_and_only_theirs(
    people: People, outbox: Path, index_pending: Indexer
) -> None:
    who = await setup(people, outbox, index_pending)

    bob = await search(who["bob"].client, "womb", mode="prefix")
    eve = await search(who["eve"].client, "quok", mode="prefix", kind="note")

    assert [item["kind"] for item in bob["items"]] == ["note"]
    assert bob["counts"]["note"] == 1
    assert "<mark>wombat" in bob["items"][0]["snippet_html"].lower()
    assert found(eve) == [("note", "zoo")]
    assert eve["counts"] == {"note": 1}
