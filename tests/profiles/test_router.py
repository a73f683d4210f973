"""The learner's profile: defaults, partial updates, unique handles, IANA time zones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI

from tests.support.accounts import Browser
from tests.support.api_document import request_body_validator

People = Callable[[str], Awaitable[Browser]]


async def patch(learner: Browser, body: dict[str, Any]) -> Any:
    return await learner.client.patch("/v1/me/profile", json=body, headers=learner.write_headers)


async def test_a_new_profile_has_the_defaults(people: People) -> None:
    ada = await people("Ada")

    profile = (await ada.client.get("/v1/me/profile")).json()

    assert profile == {
        "display_name": "Ada",
        "handle": None,
        "time_zone": "UTC",
        "is_public": False,
        "share_progress_by_concept": True,
        "updated_at": None,
        "avatar": None,
    }


async def test_a_patch_changes_only_what_it_sends(people: People) -> None:
    ada = await people("Ada")
    await patch(ada, {"handle": "ada", "time_zone": "Europe/Berlin"})

    response = await patch(ada, {"is_public": True})

    assert response.status_code == 200
    profile = (await ada.client.get("/v1/me/profile")).json()
    assert (profile["handle"], profile["time_zone"], profile["is_public"]) == (
        "ada",
        "Europe/Berlin",
        True,
    )


async def test_a_handle_taken_by_someone_else_is_a_409_problem(people: People) -> None:
    ada, bob = await people("Ada"), await people("Bob")
    await patch(ada, {"handle": "ada"})

    response = await patch(bob, {"handle": "ada", "is_public": True})

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/handle-taken"
    assert (await bob.client.get("/v1/me/profile")).json()["is_public"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "body.time_zone"),
        ({"time_zone": "../../etc/passwd"}, "body.time_zone"),
        ({"handle": "Ada Lovelace"}, "body.handle"),
        ({"handle": "-ada"}, "body.handle"),
        ({"handle": "a" * 41}, "body.handle"),
        ({"is_public": "maybe"}, "body.is_public"),
        ({"colour": "blue"}, "body.colour"),
    ],
)
async def test_bad_settings_are_a_422_problem_and_change_nothing(
    people: People, body: dict[str, Any], field: str
) -> None:
    ada = await people("Ada")

    response = await patch(ada, body)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert (await ada.client.get("/v1/me/profile")).json()["updated_at"] is None


@pytest.mark.parametrize(
    "field", ["display_name", "time_zone", "is_public", "share_progress_by_concept"]
)
async def test_a_null_setting_other_than_the_handle_is_a_422_problem(
    app: FastAPI, people: People, field: str
) -> None:
    ada = await people("Ada")
    documented = request_body_validator(app, "/v1/me/profile", "patch")

    response = await patch(ada, {field: None})

    assert response.status_code == 422
    assert response.json()["field"] == field
    # The description says so too: it does not promise a null the server refuses.
    assert not documented.is_valid({field: None})
    assert documented.is_valid({"handle": None})


async def test_a_null_handle_clears_it(people: People) -> None:
    ada = await people("Ada")
    await patch(ada, {"handle": "ada"})

    await patch(ada, {"handle": None})

    assert (await ada.client.get("/v1/me/profile")).json()["handle"] is None


async def test_the_display_name_is_changed_with_the_profile(people: People) -> None:
    ada = await people("Ada")

    response = await patch(ada, {"display_name": "  Ada L.  "})

    assert response.status_code == 200
    assert response.json()["display_name"] == "Ada L."
    assert (await ada.client.get("/v1/me")).json()["display_name"] == "Ada L."


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 101, "Ada\nLovelace", "Ada\u202eecalevol", "Ada\u0000", "Ada\u200b"],
)
async def test_a_display_name_that_is_empty_too_long_or_has_control_characters_is_refused(
    people: People, name: str
) -> None:
    ada = await people("Ada")

    response = await patch(ada, {"display_name": name})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (await ada.client.get("/v1/me")).json()["display_name"] == "Ada"


async def test_a_display_name_cannot_be_null(people: People) -> None:
    ada = await people("Ada")

    response = await patch(ada, {"display_name": None})

    assert response.status_code == 422
    assert (await ada.client.get("/v1/me")).json()["display_name"] == "Ada"
