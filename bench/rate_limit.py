"""`python -m bench.rate_limit`: the rate limiter's CPU per decision, without a server.

    .venv/bin/python -m bench.rate_limit                       # leases of 32 and of 1,000
    .venv/bin/python -m bench.rate_limit --lease-max 1         # one Redis round trip each
    PYTHONPATH=/tmp/old/src .venv/bin/python -m bench.rate_limit   # an exported older tree

Every request the application answers is first counted against its caller's quota
(platform/http/rate_limit.py). This builds the limiter as the application does, on the bench's
Redis (`SKILLTREE_BENCH_REDIS_URL`) under a throwaway key prefix, with a read quota too large to
refuse anyone, and asks it to decide `--requests` requests of one caller, one after another, on
uvloop (as the server runs). It prints the process's CPU time per decision (best and median of
the rounds): with leases, most decisions are spent from memory and one in `lease_max` makes the
Redis round trip; with `--lease-max 1000` nearly all are spent from memory, which isolates the
decision's own arithmetic and bookkeeping; with `--lease-max 1` every decision is a round trip.
"""

from __future__ import annotations

import argparse
import statistics
import time

import uvloop

from bench.stage import REDIS_URL, redis_prefix
from skilltree.platform.config import RateLimitSettings, RedisSettings
from skilltree.platform.http.rate_limit import RateLimiter, create_counters
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease-max", type=int, action="append", help="default: 32 and 1000")
    parser.add_argument("--requests", type=int, default=20_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("lease_max | µs CPU per decision, best | median")
    for lease_max in args.lease_max or [32, 1000]:
        with redis_prefix() as prefix:
            figures = uvloop.run(per_decision(lease_max, args.requests, args.rounds, prefix))
        print(f"{lease_max} | {min(figures):.1f} | {statistics.median(figures):.1f}")


if __name__ == "__main__":
    main()
