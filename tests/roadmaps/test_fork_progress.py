"""A fork can carry the forker's progress over from the original."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.support.accounts import Browser

PLAN = "# Plan\n\n## HTTP\n\n- [ ] Methods\n- [ ] Caching\n- [ ] Cookies\n"


@pytest.fixture
async def learner(people: Callable[[str], Awaitable[Browser]]) -> Browser:
    ada = await people("Ada")
    ada.client.headers.update(ada.write_headers)
    imported = await ada.client.post(
        "/v1/roadmaps/import",
        content=PLAN.encode(),
        headers={"content-type": "text/markdown"},
        params={"visibility": "public"},
    )
    assert imported.status_code == 201, imported.text
    for topic, status in (("methods", "done"), ("caching", "in_progress")):
        marked = await ada.client.put(f"/v1/me/progress/plan/{topic}", json={"status": status})
        assert marked.status_code == 200, marked.text
    return ada


async def statuses(browser: Browser, slug: str) -> dict[str, str]:
    body = (await browser.client.get(f"/v1/me/progress/{slug}")).json()
    return {
        child["slug"]: child["status"]
        for section in body["topics"]
        for child in section["children"]
    }


async def test_ones_own_fork_carries_progress_over_by_default(learner: Browser) -> None:
    forked = await learner.client.post("/v1/roadmaps/plan/forks", json={"slug": "my-plan"})

    assert forked.status_code == 201, forked.text
    assert await statuses(learner, "my-plan") == {
        "methods": "done",
        "caching": "in_progress",
        "cookies": "todo",
    }


async def test_carry_progress_false_starts_the_fork_from_zero(learner: Browser) -> None:
    forked = await learner.client.post(
        "/v1/roadmaps/plan/forks", json={"slug": "fresh", "carry_progress": False}
    )

    assert forked.status_code == 201, forked.text
    assert set((await statuses(learner, "fresh")).values()) == {"todo"}


async def test_someone_elses_progress_is_never_carried(
    learner: Browser, people: Callable[[str], Awaitable[Browser]]
) -> None:
    eve = await people("Eve")

    forked = await eve.client.post(
        "/v1/roadmaps/plan/forks", json={"slug": "eves"}, headers=eve.write_headers
    )

    assert forked.status_code == 201, forked.text
    assert set((await statuses(eve, "eves")).values()) == {"todo"}
