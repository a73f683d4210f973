"""Prometheus metrics: the counters skilltree keeps, and where a scrape reads them from.

The counters are module-level, like loggers: the code that counts imports them and calls
`inc()`; `GET /metrics` (observability/router.py) exposes them. With one process they live in
memory. With several workers (`skilltree serve --workers N`) a scrape reaches one worker at
random, so each worker writes its counters to files in a directory shared by all of them
(prometheus_client's multiprocess mode, switched on by the PROMETHEUS_MULTIPROC_DIR environment
variable that `prepare_worker_processes` sets before the workers start), and whichever worker
answers the scrape adds them all up.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "skilltree_http_requests_total",
    "Requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "skilltree_http_request_duration_seconds",
    "Time from the request reaching the app to the last byte of its response.",
    ["method", "route"],
)
CACHE_LOOKUPS = Counter(
    "skilltree_cache_lookups_total",
    "Cache reads by result: hit, miss, or bypassed (the cache was unreachable and the "
    "database answered).",
    ["result"],
)
CACHE_RECOMPUTES = Counter(
    "skilltree_cache_recomputes_total", "Values computed from the database after a miss."
)
CACHE_WAITS = Counter(
    "skilltree_cache_waits_total",
    "Requests that waited for another request's recompute of the same key (stampede protection).",
)
CACHE_ERRORS = Counter(
    "skilltree_cache_errors_total",
    "Failed cache operations (Redis down or slow); the request read the database instead.",
    ["operation"],
)
DB_POOL_SHED = Counter(
    "skilltree_db_pool_shed_total",
    "Requests answered 503 at once because every database connection was busy and the line "
    "waiting for one was full (load shedding, SKILLTREE_DATABASE_POOL_MAX_WAITING).",
)
HTTP_SHED = Counter(
    "skilltree_http_shed_total",
    "Requests answered 503 with Retry-After by admission control without being run: line_full "
    "(every slot busy and the line full), waited (no slot within SKILLTREE_HTTP_MAX_WAIT_SECONDS).",
    ["reason"],
)
# Kept up to date by admission control itself as requests come and go (not set at scrape time).
HTTP_IN_FLIGHT = Gauge(
    "skilltree_http_requests_in_flight",
    "HTTP requests of this instance under admission control by state: admitted (running) and "
    "waiting (in line for a slot). Probes, /metrics and live streams are not counted.",
    ["state"],
    multiprocess_mode="livesum",
)
RATE_LIMIT_DECISIONS = Counter(
    "skilltree_rate_limit_decisions_total",
    "Requests under a rate-limit policy by outcome: allowed, limited (429), or unchecked (the "
    "store was unreachable; let through or refused by the policy's failure mode).",
    ["policy", "outcome"],
)


def registry() -> CollectorRegistry:
    """What a scrape reads: this process's counters, or every worker's in multiprocess mode."""
    directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if not directory:
        return REGISTRY
    # A fresh registry per scrape: it reads every worker's files as they are now.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def prepare_worker_processes(workers: int) -> Path | None:
    """Before starting several worker processes: give them an empty shared metrics directory
    (a stale one would add a previous run's counts). Returns it, for removal at exit."""
    if workers <= 1:
        return None
    configured = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    if configured:
        directory = Path(configured)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return None  # the operator's directory: theirs to remove
    directory = Path(tempfile.mkdtemp(prefix="skilltree-metrics-"))
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)
    return directory


# Operations: what the alert rules in deploy/prometheus/rules/ watch (docs/operations.md).
# Gauges are set at scrape time (observability/gauges.py). The backlog figures come from the
# shared database, the same in every worker process, so the most recent one is exposed; the
# pool figures are per process and add up.
READY = Gauge(
    "skilltree_ready",
    "1 while this instance's /readyz answers 200, 0 while it answers 503 (dependency down, or "
    "draining after SIGTERM).",
    multiprocess_mode="livemin",
)
DB_POOL_CONNECTIONS = Gauge(
    "skilltree_db_pool_connections",
    "Database connections of this instance's pool by state: in_use, idle, and waiting (requests "
    "waiting for a connection).",
    ["state"],
    multiprocess_mode="livesum",
)
REPLICA_LAG = Gauge(
    "skilltree_db_replica_lag_seconds",
    "How far the read replica was behind the primary at this instance's last check (-1: it did "
    "not answer).",
    multiprocess_mode="livemax",
)
REPLICA_READS = Gauge(
    "skilltree_db_replica_in_use",
    "1 while this instance sends reading requests to the read replica, 0 while to the primary.",
    multiprocess_mode="livemin",
)
QUEUE_DEPTH = Gauge(
    "skilltree_queue_depth",
    "Tasks in the database broker's queue (runnable, delayed or running); 0 with RabbitMQ, "
    "whose own metrics show its queue.",
    multiprocess_mode="mostrecent",
)
QUEUE_OLDEST_AGE = Gauge(
    "skilltree_queue_oldest_task_age_seconds",
    "How long the oldest runnable task of the database broker has been waiting to run.",
    multiprocess_mode="mostrecent",
)
OUTBOX_PENDING = Gauge(
    "skilltree_outbox_pending_messages",
    "Outbox messages due but not yet published to the queue.",
    multiprocess_mode="mostrecent",
)
OUTBOX_LAG = Gauge(
    "skilltree_outbox_lag_seconds",
    "How long the oldest due, unpublished outbox message has waited for the relay.",
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Gauge(
    "skilltree_dead_letters",
    "Dead letters waiting to be replayed or purged (skilltree dlq list).",
    multiprocess_mode="mostrecent",
)
WEBHOOK_DELIVERIES = Counter(
    "skilltree_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered, failed (retried later), dead_lettered "
    "(the last attempt failed), disabled (the endpoint failed for too long), held (its "
    "circuit breaker is open).",
    ["outcome"],
)
FLAG_EVALUATIONS = Counter(
    "skilltree_flag_evaluations_total",
    "Feature-flag decisions by flag, variant (on, off, or default: the code's own default "
    "answered) and OpenFeature reason (TARGETING_MATCH, SPLIT, DEFAULT, ERROR).",
    ["flag", "variant", "reason"],
)

# Business counters: what users do, counted once the change is committed.
SIGNUPS = Counter(
    "skilltree_signups_total",
    "Accounts created: by registration (before e-mail verification) or by an operator.",
    ["via"],
)
TOPICS_COMPLETED = Counter(
    "skilltree_topics_completed_total", "Topics a learner marked done (re-marking counts again)."
)
REVIEWS_RATED = Counter(
    "skilltree_reviews_rated_total", "Spaced-repetition reviews recorded, by rating.", ["rating"]
)
