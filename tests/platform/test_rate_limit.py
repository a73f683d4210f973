"""Rate limits: a policy per route class, the IETF headers, 429 over the limit, the window
sliding on, one limit shared by two instances through Redis, and what happens without Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import limits.aio.storage.memory
import limits.aio.strategies
import pytest
from fastapi import FastAPI
from limits import RateLimitItem, parse

from skilltree.app import create_app
from skilltree.platform.config import HttpSettings, RateLimitSettings, RedisSettings, Settings
from skilltree.platform.db import Database
from skilltree.platform.http.rate_limit import LeasedCounters, RedisCounters, Window
from skilltree.roadmaps import service
from skilltree.roadmaps.importing import parse_roadmap
from skilltree.roadmaps.policies import OPERATOR
from tests.support.accounts import PASSWORD, register_and_verify, sign_in
from tests.support.metrics import sample
from tests.support.redis import REDIS_URL, isolated_prefix

ANY_LOGIN = {"email": "someone@example.org", "password": "not the password"}
DECISIONS = "skilltree_rate_limit_decisions_total"
SMALL = RateLimitSettings(auth="3/minute", write="4/minute", read="5/minute")
ALLOWED_ORIGIN = "https://app.example.org"


class LimitsClock:
    """The time the `limits` counters read, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_030.0  # halfway through a minute window

    def time(self) -> float:
        return self.now


@pytest.fixture
def limits_clock(monkeypatch: pytest.MonkeyPatch) -> LimitsClock:
    """Replaces `time` where the in-process counters read it."""
    clock = LimitsClock()
    fake_time = SimpleNamespace(time=clock.time)
    for module in (limits.aio.storage.memory, limits.aio.strategies):
        monkeypatch.setattr(module, "time", fake_time)
    return clock


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit": SMALL,
            "http": HttpSettings(trusted_proxies=["10.0.0.1"]),
            "auth": settings.auth.model_copy(update={"allowed_origins": [ALLOWED_ORIGIN]}),
        }
    )


@asynccontextmanager
async def serving(
    settings: Settings, database: Database, client_ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@asynccontextmanager
async def counting_in_redis(settings: Settings, **updates: object) -> AsyncIterator[Settings]:
    """The settings with the counters in a real Redis, under a key prefix of the test's own."""
    async with isolated_prefix() as prefix:
        redis = RedisSettings(url=REDIS_URL, key_prefix=prefix)
        yield settings.model_copy(update={"redis": redis, **updates})


async def test_a_read_carries_its_policy_and_what_is_left(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    response = await client.get("/v1/roadmaps")

    assert response.headers["ratelimit-policy"] == '"read";q=5;w=60'
    assert response.headers["ratelimit"] == '"read";r=4;t=30'


async def test_over_the_limit_is_a_429_problem_with_retry_after(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    statuses = [(await client.get("/v1/roadmaps")).status_code for _ in range(5)]
    refused = await client.get("/v1/roadmaps")

    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/rate-limited"
    assert refused.json()["instance"] == "/v1/roadmaps"  # as every other problem names it
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["ratelimit"].startswith('"read";r=0;')


async def test_a_browser_on_an_allowed_origin_may_read_the_429(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    browser = {"origin": ALLOWED_ORIGIN}
    for _ in range(5):
        await client.get("/v1/roadmaps", headers=browser)

    refused = await client.get("/v1/roadmaps", headers=browser)

    assert refused.status_code == 429
    # Without these the browser hides the answer from the script: a network error, with
    # no Retry-After to wait for (which CORS exposes for this very answer).
    assert refused.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "retry-after" in refused.headers["access-control-expose-headers"]
    assert "Origin" in refused.headers["vary"]


async def test_a_cached_public_tree_over_the_limit_is_a_429_the_browser_may_read(
    client: httpx.AsyncClient, database: Database, limits_clock: LimitsClock
) -> None:
    async with database.unit_of_work() as session:
        await service.import_roadmap(
            session, parse_roadmap(b"# Tiny\n\n- [ ] One\n", "markdown"), viewer=OPERATOR
        )
    browser = {"origin": ALLOWED_ORIGIN}
    # The first read fills the cache; the rest are answered from it, in front of the stack.
    for _ in range(5):
        assert (await client.get("/v1/roadmaps/tiny/tree", headers=browser)).status_code == 200

    refused = await client.get("/v1/roadmaps/tiny/tree", headers=browser)

    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_another_origin_gets_no_cors_headers_on_the_429(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    for _ in range(5):
        await client.get("/v1/roadmaps")

    refused = await client.get("/v1/roadmaps", headers={"origin": "https://elsewhere.test"})

    assert refused.status_code == 429
    assert "access-control-allow-origin" not in refused.headers


async def test_every_decision_is_counted_in_the_metrics(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    allowed = await sample(client, DECISIONS, policy="read", outcome="allowed")
    limited = await sample(client, DECISIONS, policy="read", outcome="limited")

    for _ in range(6):  # a quota of 5
        await client.get("/v1/roadmaps")

    assert await sample(client, DECISIONS, policy="read", outcome="allowed") == allowed + 5
    assert await sample(client, DECISIONS, policy="read", outcome="limited") == limited + 1


async def test_the_window_slides_on(client: httpx.AsyncClient, limits_clock: LimitsClock) -> None:
    for _ in range(5):
        await client.get("/v1/roadmaps")
    assert (await client.get("/v1/roadmaps")).status_code == 429

    limits_clock.now += 120  # two windows later, the old hits weigh nothing

    response = await client.get("/v1/roadmaps")
    assert response.status_code == 200
    assert response.headers["ratelimit"] == '"read";r=4;t=30'


async def test_sign_in_is_limited_per_address_whatever_the_account(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    for n in range(3):
        await client.post("/v1/auth/login", json={"email": f"p{n}@example.org", "password": "x"})

    refused = await client.post(
        "/v1/auth/login", json={"email": "new@example.org", "password": "x"}
    )

    assert refused.status_code == 429
    assert refused.headers["ratelimit-policy"] == '"auth";q=3;w=60'


async def test_reads_and_sign_ins_count_separately(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    for n in range(3):
        await client.post("/v1/auth/login", json={"email": f"p{n}@example.org", "password": "x"})

    assert (await client.get("/v1/roadmaps")).status_code == 200


async def test_each_credential_has_its_own_quota(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    alice = {"authorization": "Bearer token-of-alice"}
    bob = {"authorization": "Bearer token-of-bob"}
    for _ in range(5):
        await client.get("/v1/roadmaps", headers=alice)

    bobs = await client.get("/v1/roadmaps", headers=bob)

    assert (await client.get("/v1/roadmaps", headers=alice)).status_code == 429
    # (Neither token is valid, so the route answers 401: the limit is counted before that.)
    assert bobs.status_code == 401
    assert bobs.headers["ratelimit"] == '"read";r=4;t=30'


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    settings: Settings, database: Database, limits_clock: LimitsClock
) -> None:
    async with serving(settings, database, client_ip="203.0.113.9") as direct:
        for n in range(3):
            spoofed = {"x-forwarded-for": f"198.51.100.{n}"}
            await direct.post(
                "/v1/auth/login", json={"email": "a@b.org", "password": "x"}, headers=spoofed
            )
        # Inventing a new address per request did not help: the peer's own was counted.
        fourth = await direct.post(
            "/v1/auth/login",
            json={"email": "a@b.org", "password": "x"},
            headers={"x-forwarded-for": "198.51.100.77"},
        )
        assert fourth.status_code == 429

    async with serving(settings, database, client_ip="10.0.0.1") as proxy:
        for n in range(3):
            behind = {"x-forwarded-for": f"198.51.100.{n}"}
            response = await proxy.post(
                "/v1/auth/login", json={"email": "a@b.org", "password": "x"}, headers=behind
            )
            assert response.status_code != 429  # three clients behind the proxy, one try each


async def test_health_probes_are_never_limited(
    client: httpx.AsyncClient, limits_clock: LimitsClock
) -> None:
    responses = [await client.get("/livez") for _ in range(10)]

    assert {r.status_code for r in responses} == {200}
    assert "ratelimit" not in responses[0].headers


@pytest.mark.redis
async def test_two_instances_share_one_limit_through_redis(
    settings: Settings, database: Database
) -> None:
    async with (
        counting_in_redis(settings) as shared,
        serving(shared, database) as first,
        serving(shared, database) as second,
    ):
        for _ in range(3):
            assert (await first.get("/v1/roadmaps")).status_code == 200
        for _ in range(2):
            assert (await second.get("/v1/roadmaps")).status_code == 200

        refused = await first.get("/v1/roadmaps")

    assert refused.status_code == 429


@pytest.mark.redis
async def test_on_redis_each_response_says_what_is_left_and_when_it_resets(
    settings: Settings, database: Database
) -> None:
    async with counting_in_redis(settings) as shared, serving(shared, database) as client:
        responses = [await client.get("/v1/roadmaps") for _ in range(6)]

    # The window started with the first request: "t" counts down from 60 as seconds pass
    # (on a busy machine six requests can take more than one).
    fields = [_ratelimit_fields(r.headers["ratelimit"]) for r in responses]
    assert [left for left, _ in fields] == [4, 3, 2, 1, 0, 0]
    resets = [reset for _, reset in fields]
    assert all(55 <= reset <= 60 for reset in resets), resets
    assert resets == sorted(resets, reverse=True)
    assert responses[5].status_code == 429
    assert int(responses[5].headers["retry-after"]) == resets[5]


def _ratelimit_fields(header: str) -> tuple[int, int]:
    """(requests left, seconds until the window resets) from a `RateLimit` header."""
    policy, left, reset = header.split(";")
    assert policy == '"read"', header
    return int(left.removeprefix("r=")), int(reset.removeprefix("t="))


@pytest.mark.redis
async def test_on_redis_the_window_slides_on(settings: Settings, database: Database) -> None:
    # Windows of two seconds: four requests must fit in one even on a machine busy enough to
    # make a first request slow.
    per_two_seconds = RateLimitSettings(read="3 per 2 seconds")
    async with (
        counting_in_redis(settings, rate_limit=per_two_seconds) as shared,
        serving(shared, database) as client,
    ):
        allowed = [(await client.get("/v1/roadmaps")).status_code for _ in range(3)]
        refused = await client.get("/v1/roadmaps")
        await asyncio.sleep(4.1)  # two windows later, the old hits weigh nothing
        later = await client.get("/v1/roadmaps")

    assert allowed == [200, 200, 200]
    assert refused.status_code == 429
    assert later.status_code == 200
    assert later.headers["ratelimit"] == '"read";r=2;t=2'


@pytest.mark.redis
async def test_with_leases_each_response_still_says_exactly_what_is_left(
    settings: Settings, database: Database
) -> None:
    # 5 requests per round trip, and a lease that outlives a slow test machine.
    leased = RateLimitSettings(read="1000/minute", lease_max=5, lease_seconds=10)
    async with (
        counting_in_redis(settings, rate_limit=leased) as shared,
        serving(shared, database) as client,
    ):
        responses = [await client.get("/v1/nothing-here") for _ in range(7)]

    left = [r.headers["ratelimit"].split(";")[1] for r in responses]
    assert left == [f"r={n}" for n in range(999, 992, -1)]
    assert {r.headers["ratelimit-policy"] for r in responses} == {'"read";q=1000;w=60'}


@pytest.mark.redis
async def test_with_leases_two_instances_admit_no_more_than_the_quota_then_429(
    settings: Settings, database: Database
) -> None:
    leased = RateLimitSettings(read="400/minute", lease_max=4)  # 4 requests per round trip
    async with (
        counting_in_redis(settings, rate_limit=leased) as shared,
        serving(shared, database) as first,
        serving(shared, database) as second,
    ):
        responses = []
        for _ in range(210):  # the same caller, alternately on each instance
            responses.append(await first.get("/v1/nothing-here"))
            responses.append(await second.get("/v1/nothing-here"))

    admitted = [r for r in responses if r.status_code != 429]
    refused = [r for r in responses if r.status_code == 429]
    # Never more than the quota; fewer by at most one lease's unspent part per instance.
    assert 400 - 2 * (4 - 1) <= len(admitted) <= 400
    assert refused
    assert 1 <= int(refused[0].headers["retry-after"]) <= 60
    assert refused[0].headers["ratelimit"].startswith('"read";r=0;')
    assert refused[0].headers["content-type"] == "application/problem+json"


async def test_without_redis_reads_pass_and_sign_in_is_refused(
    settings: Settings, database: Database
) -> None:
    # Nothing listens on port 1: every counter call fails at once.
    down = settings.model_copy(
        update={"redis": RedisSettings(url="redis://127.0.0.1:1/0", timeout_seconds=0.5)}
    )
    async with serving(down, database) as client:
        read = await client.get("/v1/roadmaps")
        sign_in = await client.post(
            "/v1/auth/login",
            json={"email": "a@example.org", "password": "x"},
            headers={"origin": ALLOWED_ORIGIN},
        )

    assert read.status_code == 200
    assert "ratelimit" not in read.headers
    assert sign_in.status_code == 503
    assert sign_in.json()["type"] == "/problems/rate-limiter-unavailable"
    assert sign_in.headers["retry-after"] == "5"
    assert sign_in.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_a_malformed_policy_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="10/minute"):
        RateLimitSettings(read="lots")


class CountingStore:
    """A counter store like Redis's script (takes what is asked, or what the quota has left),
    that answers after the event loop has turned a few times and counts its round trips."""

    def __init__(self, quota: int) -> None:
        self.left = quota
        self.trips: list[int] = []  # what each trip asked for

    async def hit(self, limit: RateLimitItem, *identifiers: str, count: int = 1) -> Window:
        self.trips.append(count)
        for _ in range(3):
            await asyncio.sleep(0)
        taken = min(count, self.left)
        self.left -= taken
        used = limit.amount - self.left
        return Window(taken > 0, 0, 0.0, used, 60.0, taken=taken)


async def test_a_burst_of_one_callers_requests_waits_for_one_refill_of_its_lease() -> None:
    limit = parse("10000/minute")  # leases of 32
    store = CountingStore(quota=10_000)
    counters = LeasedCounters(cast(RedisCounters, store), lease_max=32, lease_seconds=10)

    windows = await asyncio.gather(*(counters.hit(limit, "read", "caller") for _ in range(500)))

    assert all(window.allowed for window in windows)
    # Each request counted once, in Redis, before it was admitted: every remaining count differs.
    assert len({window.remaining(limit.amount, limit.get_expiry()) for window in windows}) == 500
    assert len(store.trips) <= 2  # not one per request that found the lease spent
    assert 10_000 - store.left - 500 <= 31  # unspent: at most one lease


async def test_a_burst_beyond_the_quota_admits_exactly_what_is_left() -> None:
    limit = parse("10000/minute")
    store = CountingStore(quota=100)  # most of the quota already used elsewhere
    counters = LeasedCounters(cast(RedisCounters, store), lease_max=32, lease_seconds=10)

    windows = await asyncio.gather(*(counters.hit(limit, "read", "caller") for _ in range(300)))

    assert sum(window.allowed for window in windows) == 100
    assert all(window.remaining(limit.amount, limit.get_expiry()) >= 0 for window in windows)


class FailingStore(CountingStore):
    """A counter store that fails every round trip, after a few turns of the event loop."""

    async def hit(self, limit: RateLimitItem, *identifiers: str, count: int = 1) -> Window:
        self.trips.append(count)
        for _ in range(3):
            await asyncio.sleep(0)
        raise ConnectionError("the store did not answer")


async def test_a_failed_refill_fails_every_request_waiting_for_it_at_once() -> None:
    limit = parse("10000/minute")
    store = FailingStore(quota=10_000)
    counters = LeasedCounters(cast(RedisCounters, store), lease_max=32, lease_seconds=10)

    first = [asyncio.ensure_future(counters.hit(limit, "read", "caller")) for _ in range(10)]
    await asyncio.sleep(0)  # the trip is away; these come while it is
    later = [asyncio.ensure_future(counters.hit(limit, "read", "caller")) for _ in range(10)]
    outcomes = await asyncio.gather(*first, *later, return_exceptions=True)

    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    assert len(store.trips) == 1  # none waited for a second trip that would fail as well


@pytest.mark.parametrize("counted_in", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_an_address_whose_credentials_are_refused_too_often_is_refused_unknown_ones(
    settings: Settings,
    database: Database,
    outbox: Path,
    limits_clock: LimitsClock,
    counted_in: str,
) -> None:
    """Each invented credential would start a quota of its own, and cost a lookup: refused
    ones count against the address, and beyond its quota the address's credentials this
    process does not know are refused before anything looks them up. Its known callers, its
    anonymous requests and other addresses go on (decision 0081)."""
    few = settings.model_copy(
        update={"rate_limit": SMALL.model_copy(update={"refused": "3/minute", "auth": "9/minute"})}
    )
    async with counting_in_redis(few) as in_redis:
        app = create_app(in_redis if counted_in == "redis" else few, database=database)
        async with app.router.lifespan_context(app):
            here = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
            elsewhere = httpx.ASGITransport(app=app, client=("127.0.0.2", 5000))
            async with (
                httpx.AsyncClient(transport=here, base_url="http://test") as browser,
                httpx.AsyncClient(transport=here, base_url="http://test") as guesser,
                httpx.AsyncClient(transport=elsewhere, base_url="http://test") as other,
            ):
                await register_and_verify(browser, outbox)
                await sign_in(browser)
                assert (await browser.get("/v1/me")).status_code == 200  # kept from now on
                guesses = [
                    await guesser.get("/v1/me", headers={"authorization": f"Bearer guess-{n}"})
                    for n in range(5)
                ]
                known = await browser.get("/v1/me")
                anonymous = await guesser.get("/v1/roadmaps")
                from_elsewhere = await other.get(
                    "/v1/me", headers={"authorization": "Bearer guess"}
                )
                # Someone signing in there now: their session, or the access token an API
                # client is issued, is known from the moment it is made.
                async with httpx.AsyncClient(transport=here, base_url="http://test") as late:
                    await sign_in(late)
                    signed_in_now = await late.get("/v1/me")
                    issued = await late.post(
                        "/v1/auth/token", json={"email": "ada@example.org", "password": PASSWORD}
                    )
                    late.cookies.clear()
                    token = issued.json()["access_token"]
                    by_token_now = await late.get(
                        "/v1/me", headers={"authorization": f"Bearer {token}"}
                    )

    assert [g.status_code for g in guesses] == [401, 401, 401, 401, 429]
    assert guesses[4].json()["type"] == "/problems/credentials-refused"
    assert int(guesses[4].headers["retry-after"]) > 0
    assert known.status_code == 200
    assert anonymous.status_code == 200
    assert from_elsewhere.status_code == 401
    assert signed_in_now.status_code == 200
    assert by_token_now.status_code == 200
