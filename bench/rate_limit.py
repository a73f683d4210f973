"""`python -m bench.rate_limit`: the rate limiter's CPU per decision, without a server.

    .venv/bin/python -m bench.rate_limit                       # leases of 32 and of 1,000
    .venv/bin/python -m bench.rate_limit --lease-max 1         # one Redis round trip each
    .venv/bin/python -m bench.rate_limit --round-trips         # what one round trip costs
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.rate_limit   # an exported older tree

Every request the application answers is first counted against its caller's quota
(platform/http/rate_limit.py). This builds the limiter as the application does, on the bench's
Redis (`SKILLTREE_BENCH_REDIS_URL`) under a throwaway key prefix, with a read quota too large to
refuse anyone, and asks it to decide `--requests` requests of one caller, one after another, on
uvloop (as the server runs). It prints the process's CPU time per decision (best and median of
the rounds): with leases, most decisions are spent from memory and one in `lease_max` makes the
Redis round trip; with `--lease-max 1000` nearly all are spent from memory, which isolates the
decision's own arithmetic and bookkeeping; with `--lease-max 1` every decision is a round trip.

`--round-trips` measures what the round trip a lease refill makes costs this process: the
limiter's script (EVALSHA) through the application's client, `RedisCounters.hit`, against the
same command written and read on a bare asyncio stream to the same Redis, which no client can
go under; the two alternate, `--requests` calls each, one after another.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from urllib.parse import urlsplit

import uvloop
from limits import parse

from bench.stage import REDIS_URL, redis_prefix
from skilltree.platform.config import RateLimitSettings, RedisSettings
from skilltree.platform.http.rate_limit import (
    HIT_SCRIPT,
    RateLimiter,
    RedisCounters,
    create_counters,
)
from skilltree.platform.redis import create_redis

QUOTA = "1000000000/minute"  # never refuses: every decision is an allowed one
# An anonymous read from one address: the key needs no hashing, so what is measured is the
# counting and the decision.
SCOPE = {"type": "http", "method": "GET", "path": "/v1/roadmaps", "headers": [],
         "client": ("127.0.0.1", 40000)}  # fmt: skip


async def per_decision(lease_max: int, requests: int, rounds: int, prefix: str) -> list[float]:
    """CPU microseconds per decision, one figure a round."""
    # The client as the application builds it: its pool, timeouts and decoding cost every trip.
    redis_settings = RedisSettings(url=REDIS_URL, key_prefix=prefix)
    redis = create_redis(redis_settings)
    assert redis is not None
    try:
        settings = RateLimitSettings(read=QUOTA, lease_max=lease_max)
        counters = create_counters(redis_settings, redis, settings)
        limiter = RateLimiter(settings, counters, session_cookie="skilltree_session")
        policy = limiter.policy_for(SCOPE)
        assert policy is not None
        for _ in range(min(requests, 2_000)):  # warm: the script loaded, a lease taken
            await limiter.decide(policy, SCOPE, None)
        figures = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(requests):
                await limiter.decide(policy, SCOPE, None)
            figures.append(1e6 * (time.process_time() - started) / requests)
        return figures
    finally:
        await redis.aclose()


async def per_round_trip(requests: int, rounds: int, prefix: str) -> dict[str, list[float]]:
    """CPU microseconds per EVALSHA of the limiter's script: through the application's client,
    and on a bare stream (the same bytes a client sends, its reply read whole)."""
    redis_settings = RedisSettings(url=REDIS_URL, key_prefix=prefix)
    redis = create_redis(redis_settings)
    assert redis is not None
    counters = RedisCounters(redis, prefix)
    limit = parse(QUOTA)  # the read policy's limit, as the application parses it
    await counters.hit(limit, "read", "ip:bench")  # loads the script
    sha = await redis.script_load(HIT_SCRIPT)
    address = urlsplit(REDIS_URL)
    reader, writer = await asyncio.open_connection(address.hostname, address.port or 6379)
    keys = [f"{prefix}ratelimit:bench:previous", f"{prefix}ratelimit:bench:current"]
    words = ["EVALSHA", sha, "2", *keys, str(limit.amount), str(limit.get_expiry()), "1"]
    command = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(word)}\r\n{word}\r\n".encode() for word in words
    )

    async def bare() -> None:
        writer.write(command)
        header = await reader.readuntil(b"\r\n")  # *5: five integers follow
        for _ in range(int(header[1:])):
            await reader.readuntil(b"\r\n")

    async def client() -> None:
        await counters.hit(limit, "read", "ip:bench")

    figures: dict[str, list[float]] = {"the application's client": [], "a bare stream": []}
    try:
        for _ in range(rounds):
            for name, call in (("the application's client", client), ("a bare stream", bare)):
                started = time.process_time()
                for _ in range(requests):
                    await call()
                figures[name].append(1e6 * (time.process_time() - started) / requests)
        return figures
    finally:
        writer.close()
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease-max", type=int, action="append", help="default: 32 and 1000")
    parser.add_argument("--requests", type=int, default=20_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-trips", action="store_true", help="the refill's round trip")
    args = parser.parse_args()
    if args.round_trips:
        with redis_prefix() as prefix:
            trips = uvloop.run(per_round_trip(min(args.requests, 5_000), args.rounds, prefix))
        print("EVALSHA of the limiter's script | µs CPU per round trip, best | median")
        for name, figures in trips.items():
            print(f"{name} | {min(figures):.1f} | {statistics.median(figures):.1f}")
        client, bare = (statistics.median(figures) for figures in trips.values())
        print(f"the client × a bare stream: {client / bare:.2f}")
        return
    print("lease_max | µs CPU per decision, best | median")
    for lease_max in args.lease_max or [32, 1000]:
        with redis_prefix() as prefix:
            figures = uvloop.run(per_decision(lease_max, args.requests, args.rounds, prefix))
        print(f"{lease_max} | {min(figures):.1f} | {statistics.median(figures):.1f}")


if __name__ == "__main__":
    main()
