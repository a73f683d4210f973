"""The administrators' flag API: create, read, change rules, delete; If-Match; problems; audit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from skilltree.audit.models import SecurityEvent
from skilltree.flags.provider import FeatureFlags
from skilltree.platform.db import Database
from tests.flags.conftest import People
from tests.support.accounts import Browser, user_id

FLAG = "/v1/admin/flags/new-dashboard"
PROBLEM = "application/problem+json"


async def create(root: Browser, url: str = FLAG, **body: Any) -> httpx.Response:
    response = await root.client.put(
        url, json={"enabled": False, **body}, headers=root.write_headers
    )
    assert response.status_code == 201, response.text
    return response


async def patch(root: Browser, body: dict[str, Any], etag: str | None) -> httpx.Response:
    headers = dict(root.write_headers) | ({"if-match": etag} if etag else {})
    return await root.client.patch(FLAG, json=body, headers=headers)


def flags_of(app: FastAPI) -> FeatureFlags:
    flags: FeatureFlags = app.state.feature_flags
    return flags


async def test_an_administrator_creates_reads_and_lists_a_flag(root: Browser) -> None:
    created = await create(root, description="The new dashboard", rollout_percentage=10)
    shown = await root.client.get(FLAG)
    listed = (await root.client.get("/v1/admin/flags")).json()

    assert created.headers["location"] == FLAG
    assert created.headers["etag"] == shown.headers["etag"]
    assert shown.json() | {"updated_at": None} == {
        "key": "new-dashboard",
        "description": "The new dashboard",
        "enabled": False,
        "rollout_percentage": 10,
        "users": {},
        "organisations": {},
        "updated_at": None,
    }
    assert [item["key"] for item in listed["items"]] == ["new-dashboard"]
    not_modified = await root.client.get(FLAG, headers={"if-none-match": shown.headers["etag"]})
    assert not_modified.status_code == 304


async def test_only_platform_administrators_may_call_it(
    root: Browser, people: People, client: httpx.AsyncClient
) -> None:
    learner = await people("Lena")
    await create(root)

    anonymous = await client.get("/v1/admin/flags")
    refused = await learner.client.patch(
        FLAG, json={"enabled": True}, headers=learner.write_headers | {"if-match": "*"}
    )

    assert anonymous.status_code == 401
    assert (refused.status_code, refused.json()["type"]) == (403, "/problems/not-platform-admin")
    assert (await root.client.get(FLAG)).json()["enabled"] is False


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/admin/flags/Not_A_Key", {"enabled": True}),
        (FLAG, {"enabled": True, "rollout_percentage": 101}),
        (FLAG, {"enabled": True, "colour": "blue"}),
        (FLAG, {"description": "no default"}),
        (FLAG, {"enabled": "perhaps"}),
    ],
)
async def test_bad_input_is_a_422_problem_and_stores_nothing(
    root: Browser, url: str, body: dict[str, Any]
) -> None:
    response = await root.client.put(url, json=body, headers=root.write_headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert (await root.client.get("/v1/admin/flags")).json()["items"] == []


async def test_an_override_for_no_such_user_or_organisation_is_refused(root: Browser) -> None:
    etag = (await create(root)).headers["etag"]

    for body in ({"users": {"999999": True}}, {"organisations": {"999999": False}}):
        response = await patch(root, body, etag)
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "/problems/unknown-flag-subject"
    assert (await root.client.get(FLAG)).headers["etag"] == etag  # nothing changed


async def test_an_unknown_flag_is_a_404_problem(root: Browser) -> None:
    response = await root.client.get("/v1/admin/flags/no-such-flag")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/flag-not-found"


async def test_changes_need_the_etag_the_administrator_last_read(root: Browser) -> None:
    first = (await create(root)).headers["etag"]
    changed = await patch(root, {"enabled": True}, first)

    without = await patch(root, {"enabled": False}, None)
    stale = await patch(root, {"enabled": False}, first)
    replace_without = await root.client.put(
        FLAG, json={"enabled": False}, headers=root.write_headers
    )
    create_only = await root.client.put(
        FLAG, json={"enabled": False}, headers=root.write_headers | {"if-none-match": "*"}
    )

    assert changed.status_code == 200
    assert changed.headers["etag"] != first
    assert (without.status_code, without.json()["type"]) == (428, "/problems/precondition-required")
    assert (stale.status_code, stale.json()["type"]) == (412, "/problems/precondition-failed")
    assert replace_without.status_code == 428
    assert create_only.status_code == 412
    assert (await root.client.get(FLAG)).json()["enabled"] is True


async def test_rules_change_by_patch_and_null_removes_a_rule(root: Browser, people: People) -> None:
    lena = await user_id(await people("Lena"))
    etag = (await create(root, rollout_percentage=20)).headers["etag"]

    set_rules = await patch(root, {"users": {str(lena): True}, "description": "Dashboard"}, etag)
    cleared = await patch(
        root, {"users": {str(lena): None}, "rollout_percentage": None}, set_rules.headers["etag"]
    )

    assert set_rules.json()["users"] == {str(lena): True}
    assert set_rules.json()["rollout_percentage"] == 20
    assert cleared.json()["users"] == {}
    assert cleared.json()["rollout_percentage"] is None
    assert cleared.json()["description"] == "Dashboard"


async def test_a_replacing_put_keeps_the_overrides(root: Browser, people: People) -> None:
    lena = await user_id(await people("Lena"))
    etag = (await create(root)).headers["etag"]
    etag = (await patch(root, {"users": {str(lena): True}}, etag)).headers["etag"]

    replaced = await root.client.put(
        FLAG, json={"enabled": True}, headers=root.write_headers | {"if-match": etag}
    )

    assert replaced.status_code == 200
    assert replaced.json()["enabled"] is True
    assert replaced.json()["users"] == {str(lena): True}


async def test_delete_needs_if_match_and_then_the_codes_default_answers(
    root: Browser, app: FastAPI
) -> None:
    etag = (await create(root, enabled=True)).headers["etag"]
    flags = flags_of(app)
    assert await flags.is_enabled("new-dashboard", default=False, user_id=None) is True

    refused = await root.client.delete(FLAG, headers=root.write_headers)
    deleted = await root.client.delete(FLAG, headers=root.write_headers | {"if-match": etag})

    assert refused.status_code == 428
    assert deleted.status_code == 204
    assert (await root.client.get(FLAG)).status_code == 404
    assert await flags.is_enabled("new-dashboard", default=False, user_id=None) is False


async def test_every_change_is_in_the_audit_log(root: Browser, database: Database) -> None:
    etag = (await create(root)).headers["etag"]
    etag = (await patch(root, {"rollout_percentage": 30}, etag)).headers["etag"]
    await root.client.delete(FLAG, headers=root.write_headers | {"if-match": etag})
    admin = await user_id(root)

    async with database.unit_of_work() as session:
        query = select(SecurityEvent).where(SecurityEvent.kind.like("flag.%"))
        events = (await session.scalars(query.order_by(SecurityEvent.id))).all()

    assert [(e.kind, e.user_id, e.details["change"]) for e in events] == [
        ("flag.changed", admin, "created"),
        ("flag.changed", admin, "rules"),
        ("flag.deleted", admin, "deleted"),
    ]
    assert events[1].details["rollout_percentage"] == 30


async def test_a_change_is_seen_at_once_by_the_instance_that_made_it(
    root: Browser, app: FastAPI
) -> None:
    flags = flags_of(app)
    etag = (await create(root)).headers["etag"]
    assert await flags.is_enabled("new-dashboard", default=True, user_id=1) is False
    loads = flags.rule_sets.loads
    assert await flags.is_enabled("new-dashboard", default=True, user_id=1) is False
    assert flags.rule_sets.loads == loads  # served from memory

    await patch(root, {"enabled": True}, etag)

    assert await flags.is_enabled("new-dashboard", default=False, user_id=1) is True
    assert flags.rule_sets.loads == loads + 1
