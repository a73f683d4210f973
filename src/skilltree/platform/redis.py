"""The shared Redis connection pool, for state that every instance of the service must see.

One client (and so one connection pool) per process, created by the app lifespan when
`SKILLTREE_REDIS_URL` is set. Timeouts are short and explicit: a Redis that hangs must fail a
request quickly rather than hold its worker.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from skilltree.platform.config import RedisSettings


def create_redis(settings: RedisSettings) -> Redis | None:
    if settings.url is None:
        return None
    # Blocking: a burst larger than the pool (a room's heartbeats arriving together) queues for
    # a connection up to the timeout; redis-py's default pool raises MaxConnectionsError.
    pool = BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.timeout_seconds,
        socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds,
        health_check_interval=30,
        decode_responses=True,
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool
