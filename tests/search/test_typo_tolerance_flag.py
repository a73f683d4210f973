"""Typo tolerance is switched by the `search-typo-tolerance` feature flag, per caller, and each
decision is counted."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import update

from skilltree.accounts.models import User
from skilltree.platform.db import Database
from skilltree.search.service import TYPO_TOLERANCE_FLAG
from tests.search.conftest import People, search, topics_of
from tests.support.accounts import Browser, user_id

FLAG = f"/v1/admin/flags/{TYPO_TOLERANCE_FLAG}"
MISSPELT = "idempotncy"


def decisions(variant: str, reason: str) -> float:
    labels = {"flag": TYPO_TOLERANCE_FLAG, "variant": variant, "reason": reason}
    return REGISTRY.get_sample_value("skilltree_flag_evaluations_total", labels) or 0.0


async def administrator(people: People, database: Database) -> Browser:
    root = await people("Root")
    async with database.unit_of_work() as session:
        await session.execute(
            update(User).where(User.id == await user_id(root)).values(is_admin=True)
        )
    return root


async def test_without_a_flag_typos_are_forgiven_and_the_codes_default_is_counted(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    before = decisions("default", "ERROR")

    found = topics_of(await search(client, MISSPELT))

    assert found[:1] == ["idempotency-keys"]
    assert decisions("default", "ERROR") == before + 1


async def test_switched_off_a_misspelt_search_finds_nothing_but_exact_words_still_match(
    ada: Browser, client: httpx.AsyncClient, people: People, database: Database
) -> None:
    root = await administrator(people, database)
    created = await root.client.put(FLAG, json={"enabled": False}, headers=root.write_headers)
    assert created.status_code == 201, created.text
    before = decisions("off", "DEFAULT")

    misspelt = await search(client, MISSPELT)
    exact = topics_of(await search(client, "idempotency"))

    assert misspelt["items"] == []
    assert exact[:1] == ["idempotency-keys"]
    assert decisions("off", "DEFAULT") == before + 2


async def test_a_user_override_turns_it_back_on_for_that_user_only(
    ada: Browser, client: httpx.AsyncClient, people: People, database: Database
) -> None:
    root = await administrator(people, database)
    created = await root.client.put(FLAG, json={"enabled": False}, headers=root.write_headers)
    etag = created.headers["etag"]
    targeted = await root.client.patch(
        FLAG,
        json={"users": {str(await user_id(ada)): True}},
        headers=root.write_headers | {"if-match": etag},
    )
    assert targeted.status_code == 200, targeted.text
    before = decisions("on", "TARGETING_MATCH")

    for_ada = topics_of(await search(ada.client, MISSPELT))
    for_anyone = topics_of(await search(client, MISSPELT))

    assert for_ada[:1] == ["idempotency-keys"]
    assert for_anyone == []
    assert decisions("on", "TARGETING_MATCH") == before + 1
