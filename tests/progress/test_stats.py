"""Streaks and the heatmap in the learner's time zone, and the public SVG badge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx

from skilltree.platform.clock import FrozenClock
from skilltree.progress.activity import streaks
from tests.support.accounts import Browser
from tests.support.progress import WEB, People, import_roadmap, mark, use_api_key


async def stats(learner: Browser) -> dict[str, object]:
    response = await learner.client.get("/v1/me/stats")
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


async def test_streaks_count_consecutive_active_days(ada: Browser, clock: FrozenClock) -> None:
    await use_api_key(ada)
    for topic in ("etags", "indexes", "status-codes"):
        await mark(ada, topic, "done")
        clock.advance(days=1)
    clock.advance(days=2)  # two quiet days break the run
    await mark(ada, "cache-control", "done")
    clock.advance(days=1)
    await mark(ada, "etags", "in_progress")

    result = await stats(ada)

    assert (result["current_streak"], result["longest_streak"]) == (2, 3)


async def test_today_without_activity_does_not_break_the_streak_yet(
    ada: Browser, clock: FrozenClock
) -> None:
    await use_api_key(ada)
    await mark(ada, "etags", "done")
    clock.advance(days=1)

    assert (await stats(ada))["current_streak"] == 1
    clock.advance(days=1)
    assert (await stats(ada))["current_streak"] == 0


async def test_days_are_counted_in_the_profiles_time_zone(ada: Browser, clock: FrozenClock) -> None:
    await use_api_key(ada)
    await ada.client.patch(
        "/v1/me/profile", json={"time_zone": "Asia/Tokyo"}, headers=ada.write_headers
    )
    clock.advance(hours=14 - clock.now().hour)
    assert clock.now() == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # 23:00 in Tokyo, 1 January
    await mark(ada, "etags", "done")
    clock.advance(hours=2)  # 01:00 in Tokyo, 2 January; still 1 January in UTC
    await mark(ada, "indexes", "done")

    result = await stats(ada)

    assert result["current_streak"] == 2
    heatmap = result["heatmap"]
    assert isinstance(heatmap, list)
    assert len(heatmap) == 365
    assert heatmap[-1] == {"date": "2026-01-02", "count": 1}
    assert heatmap[-2] == {"date": "2026-01-01", "count": 1}
    assert sum(day["count"] for day in heatmap) == 2


def test_the_longest_streak_survives_a_later_gap() -> None:
    first = date(2026, 1, 1)
    days = [first + timedelta(days=n) for n in (0, 1, 2, 3, 10, 11)]

    result = streaks(days, today=date(2026, 1, 20))

    assert (result.current, result.longest) == (0, 4)


async def public_profile(learner: Browser, handle: str) -> None:
    response = await learner.client.patch(
        "/v1/me/profile", json={"handle": handle, "is_public": True}, headers=learner.write_headers
    )
    assert response.status_code == 200


async def test_a_public_profile_has_a_cacheable_svg_badge(
    ada: Browser, client: httpx.AsyncClient
) -> None:
    await public_profile(ada, "ada")
    await mark(ada, "http", "done")

    response = await client.get("/v1/users/ada/badges/web.svg")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert "Web: 75%" in response.text


async def test_a_private_profile_has_no_badge(ada: Browser, client: httpx.AsyncClient) -> None:
    await ada.client.patch("/v1/me/profile", json={"handle": "ada"}, headers=ada.write_headers)

    response = await client.get("/v1/users/ada/badges/web.svg")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/profile-not-found"


async def test_a_badge_never_shows_a_private_roadmap(
    people: People, client: httpx.AsyncClient
) -> None:
    eve = await people("Eve")
    await import_roadmap(eve, {**WEB, "slug": "secret", "title": "Secret"})
    await public_profile(eve, "eve")

    response = await client.get("/v1/users/eve/badges/secret.svg")

    assert response.status_code == 404
    assert response.json()["type"] == "/problems/roadmap-not-found"


async def test_a_badge_escapes_the_roadmap_title(people: People, client: httpx.AsyncClient) -> None:
    eve = await people("Eve")
    await import_roadmap(eve, {**WEB, "slug": "xss", "title": "<script>x</script>"}, "public")
    await public_profile(eve, "eve")

    response = await client.get("/v1/users/eve/badges/xss.svg")

    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
