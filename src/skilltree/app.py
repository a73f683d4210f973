"""The app factory: settings in, ASGI app out. The lifespan owns every external resource."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import skilltree.models  # noqa: F401  (registers every table, so cross-domain foreign keys resolve)
from skilltree import __version__
from skilltree.accounts.admin_router import router as admin_router
from skilltree.accounts.dependencies import (
    idempotency_caller,
    knows_caller,
    maybe_principal,
    owner_sign_in,
    signed_in,
)
from skilltree.accounts.principal_cache import principal_cache_for
from skilltree.accounts.router import PERSONAL_READS as ACCOUNT_READS
from skilltree.accounts.router import router as accounts_router
from skilltree.background.router import router as background_router
from skilltree.cohorts.router import router as cohorts_router
from skilltree.erasure.router import router as erasure_router
from skilltree.files import service as files_service
from skilltree.files.router import AVATAR_PATH, UPLOAD_PATH_SUFFIX
from skilltree.files.router import router as files_router
from skilltree.files.tus_router import TUS_PATH_PREFIX
from skilltree.files.tus_router import router as tus_router
from skilltree.flags.provider import FeatureFlags, RuleSets
from skilltree.flags.router import router as flags_router
from skilltree.notifications.router import router as notifications_router
from skilltree.orgs.router import router as orgs_router
from skilltree.platform import health
from skilltree.platform.clock import Clock
from skilltree.platform.config import Settings, load_settings
from skilltree.platform.db import Database
from skilltree.platform.http import api_description
from skilltree.platform.http.admission import AdmissionMiddleware, Slots
from skilltree.platform.http.api_docs import install_api_docs
from skilltree.platform.http.compression import CompressionMiddleware
from skilltree.platform.http.credentials import Credentials
from skilltree.platform.http.fast_path import FastPathMiddleware, resources_in
from skilltree.platform.http.front_door import FrontDoorApp
from skilltree.platform.http.idempotency import IdempotencyMiddleware
from skilltree.platform.http.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    CorsMiddleware,
    RequestIdMiddleware,
    UnhandledErrorMiddleware,
)
from skilltree.platform.http.probes import LivenessMiddleware
from skilltree.platform.http.problems import install_problem_handlers
from skilltree.platform.http.rate_limit import RateLimiter, RateLimitMiddleware, create_counters
from skilltree.platform.http.read_your_writes import ReadYourWritesMiddleware
from skilltree.platform.http.route_index import install_route_index
from skilltree.platform.http.security_headers import SecurityHeadersMiddleware
from skilltree.platform.http.text_input import TextInputMiddleware
from skilltree.platform.http.versioning import API_PREFIX
from skilltree.platform.observability.logging import configure_logging
from skilltree.platform.observability.router import router as metrics_router
from skilltree.platform.observability.tracing import (
    configure_tracing,
    instrument_app,
)
from skilltree.platform.redis import create_redis
from skilltree.platform.shutdown import on_termination
from skilltree.platform.state import Resources
from skilltree.profiles.avatar_link import link_avatars
from skilltree.profiles.router import router as profiles_router
from skilltree.progress import service as progress_service
from skilltree.progress.router import PERSONAL_READS as PROGRESS_READS
from skilltree.progress.router import router as progress_router
from skilltree.realtime.router import router as realtime_router
from skilltree.reviews.router import PERSONAL_READS as REVIEW_READS
from skilltree.reviews.router import router as reviews_router
from skilltree.roadmaps.editing_router import router as roadmap_editing_router
from skilltree.roadmaps.importing.errors import RoadmapTooLarge
from skilltree.roadmaps.progress_link import link_progress
from skilltree.roadmaps.router import CACHED_READS
from skilltree.roadmaps.router import router as roadmaps_router
from skilltree.rooms.presence import LocalPresence, Presence, PresenceAnnouncer, RedisPresence
from skilltree.rooms.router import router as rooms_router
from skilltree.search.in_process import InProcessIndexer
from skilltree.search.router import router as search_router
from skilltree.web.install import install_web
from skilltree.web.router import PERSONAL_READS as PAGE_READS
from skilltree.webhooks.router import router as webhooks_router
from skilltree.wiring import open_resources


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the application. Resources passed in are used as they are (tests pass a database
    bound to a rolled-back transaction, a frozen clock); the rest are created from settings."""
    # Roadmap imports and forks write the caller's progress through this link (no cycle).
    link_progress(progress_service.apply_marks_for, progress_service.carry_over_for)
    # The profile links its avatar through this one (files depends on profiles already).
    link_avatars(files_service.avatar_version)
    # Created here (it connects only when first used) so the rate limiter shares its pool.
    redis = create_redis(settings.redis)
    graphql, graphql_storage = _graphql(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The resources every server shares (skilltree grpc opens the same), closed last.
        async with open_resources(
            settings, redis=redis, database=database, clock=clock
        ) as resources:
            app.state.resources = resources
            async with _http_resources(app, settings, resources):
                yield

    app = FrontDoorApp(
        title="skilltree",
        version=__version__,
        summary="Learning roadmaps for backend engineers, implemented by the service itself.",
        lifespan=lifespan,
        # Served by install_api_docs, with assets from the installation instead of a CDN.
        docs_url=None,
        redoc_url=None,
        # Traces come from skilltree's own instrumentation (platform/observability/tracing.py)
        # and metrics from its own registry; FastAPI's built-in telemetry would add a second set
        # of spans when tracing is on, and asks OpenTelemetry for its providers on every request
        # (environment reads) even when it is off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_problem_handlers(app)
    install_api_docs(app)
    api_description.describe(
        app,
        session_cookie=settings.auth.session_cookie,
        required=signed_in,
        optional=maybe_principal,
        no_api_keys=owner_sign_in,
        storage=graphql_storage,
    )
    instrument_app(app, settings.tracing)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(accounts_router)
    app.include_router(admin_router)
    app.include_router(orgs_router)
    app.include_router(background_router)
    app.include_router(webhooks_router)
    app.include_router(notifications_router)
    app.include_router(roadmaps_router)
    app.include_router(profiles_router)
    app.include_router(progress_router)
    app.include_router(reviews_router)
    app.include_router(roadmap_editing_router)
    app.include_router(search_router)
    app.include_router(files_router)
    app.include_router(tus_router)
    # The learner's web app: pages over the same services (docs/web.md).
    install_web(app)
    app.include_router(cohorts_router)
    app.include_router(realtime_router)
    app.include_router(rooms_router)
    if graphql is not None:
        app.include_router(graphql)
    app.include_router(flags_router)
    app.include_router(erasure_router)
    # A request tries the routes filed under its method and path, not every router in turn
    # (decision 0074); FastAPI's router answers everything but a plain match.
    install_route_index(app)

    # Added last runs first: the request id exists before the access log and any error, and the
    # access log sees the 500 that UnhandledErrorMiddleware makes of a bug.
    # Idempotency is innermost: it stores the response the route produced, uncompressed.
    app.add_middleware(IdempotencyMiddleware, identify=idempotency_caller)
    # Text no database stores (U+0000, lone surrogates) and deep JSON: a 422 before any route.
    app.add_middleware(TextInputMiddleware)
    # Compression sits near the app, so the access log counts the bytes actually sent.
    app.add_middleware(
        CompressionMiddleware,
        minimum_size=settings.http.compression_min_bytes,
        memo_bytes=settings.http.compression_memo_bytes,
    )
    app.add_middleware(UnhandledErrorMiddleware)
    # Browsers on the allow-listed origins may call the API with credentials; every other
    # origin gets no CORS headers, so the browser keeps responses from its scripts.
    cors: dict[str, Any] = {
        "allow_origins": settings.auth.allowed_origins,
        "allow_credentials": True,
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
        "allow_headers": [
            "authorization",
            "content-type",
            "x-csrf-token",
            "x-request-id",
            "if-match",
            "if-none-match",
            "idempotency-key",
        ],
        "expose_headers": [
            "x-request-id",
            "location",
            "retry-after",
            "etag",
            "link",
            "deprecation",
            "sunset",
            "idempotency-replayed",
            "ratelimit",
            "ratelimit-policy",
        ],
        "max_age": 600,
    }
    app.add_middleware(CorsMiddleware, **cors)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.http.max_body_bytes,
        problems_by_path={f"{API_PREFIX}/roadmaps/import": RoadmapTooLarge},
        # Uploads stream to storage under limits of their own (per kind, per learner).
        unlimited_path_suffixes=(UPLOAD_PATH_SUFFIX, AVATAR_PATH),
        unlimited_path_prefixes=(TUS_PATH_PREFIX,),
    )
    if settings.database.replica_url:  # a client that wrote reads the primary for a while
        app.add_middleware(
            ReadYourWritesMiddleware,
            seconds=settings.database.read_your_writes_seconds,
            secure=settings.auth.cookie_secure,
        )
    if settings.log.access_log:
        app.add_middleware(AccessLogMiddleware)
    limiter: RateLimiter | None = None
    if settings.rate_limit.enabled:
        limiter = RateLimiter(
            settings.rate_limit,
            create_counters(settings.redis, redis, settings.rate_limit),
            session_cookie=settings.auth.session_cookie,
        )
        app.add_middleware(
            RateLimitMiddleware,
            limiter=limiter,
            cors=cors,
            known=_knows_caller,
        )
    # Admission control (decision 0060): outside the rate limiter, the access log and all
    # below, so a request refused for overload costs no Redis round trip and no work (it counts
    # itself in the request metrics); inside the security headers and the request id, so the
    # refusal carries them. Behind the fast path: cached public reads are answered there from
    # memory at a fraction of a routed request's cost, and are neither counted nor refused;
    # a personal read that asks a session store takes one of the same slots there.
    slots: Slots | None = None
    if settings.http.max_in_flight:
        slots = Slots.of(settings.http)
        app.add_middleware(
            AdmissionMiddleware,
            slots=slots,
            settings=settings.http,
            # The live streams are the only routes that answer a stream (a test holds the
            # app's routes to that).
            stream_routes=realtime_router.routes,
            cors=cors,
            access_log=settings.log.access_log,
        )
    # Outside the body limit, the rate limiter and CORS: their refusals get the headers too.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # Cached public reads answered from local copies, doing what the stack above would do
    # (decision 0055), and a signed-in caller's own ready reads (decisions 0080, 0082). Not with a
    # replica (its entries are kept apart) nor with tracing (a span per request is the point
    # there).
    if (
        settings.http.fast_path
        and not settings.database.replica_url
        and not settings.tracing.enabled
    ):
        app.add_front_middleware(
            FastPathMiddleware,
            reads=CACHED_READS,
            personal=(*ACCOUNT_READS, *PROGRESS_READS, *REVIEW_READS, *PAGE_READS),
            slots=slots,
            cors=cors,
            limiter=limiter,
            access_log=settings.log.access_log,
            minimum_size=settings.http.compression_min_bytes,
            session_cookie=settings.auth.session_cookie,
        )
    # Liveness probes answered before any of the above, whatever the configuration: none of it
    # acts on them (not throttled, refused, compressed nor logged at info).
    app.add_front_middleware(
        LivenessMiddleware,
        access_log=settings.log.access_log,
        minimum_size=settings.http.compression_min_bytes,
    )
    # Outermost: the client address everything else sees (logs, audit, throttles, limits) is
    # the one behind a trusted proxy, and only a trusted proxy may say what it is.
    app.add_front_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.http.trusted_proxies)
    return app


def _knows_caller(scope: Scope, credentials: Credentials) -> bool:
    """Whether this process keeps the caller behind a request's credentials, by memory alone:
    the rate limiter lets them through an address refusing unknown ones (decision 0081)."""
    resources = resources_in(scope)
    return resources is not None and knows_caller(resources, credentials)


def _graphql(settings: Settings) -> tuple[APIRouter | None, tuple[Callable[..., Any], ...]]:
    """The /graphql routes and the dependency that says they reach storage, when GraphQL is on.

    The routes are light twins of strawberry's: strawberry, graphql-core and the schema (about
    10 MiB) load on the first request to /graphql, in a worker that is asked one
    (graphql/lazy.py, docs/performance.md)."""
    if not settings.graphql.enabled:
        return None, ()
    from skilltree.graphql.lazy import lazy_graphql_router, reaches_storage

    return lazy_graphql_router(settings), (reaches_storage,)


@asynccontextmanager
async def _http_resources(
    app: FastAPI, settings: Settings, resources: Resources
) -> AsyncIterator[None]:
    """What only the HTTP server keeps: remembered callers, feature flags, room presence, the
    in-process search index, and draining live connections on SIGTERM."""
    db, broadcaster, redis = resources.database, resources.broadcaster, resources.redis
    # Callers kept between requests, forgotten when any instance announces a sign-out.
    principals = principal_cache_for(broadcaster, settings.auth)
    db.on_every_unit_of_work(principals.bind)
    await principals.start()
    presence: Presence = LocalPresence()
    if redis is not None:
        presence = RedisPresence(redis, f"{settings.redis.key_prefix}rt:")
    app.state.room_presence = presence
    announcer = PresenceAnnouncer(broadcaster, settings.realtime.presence_batch_seconds)
    app.state.room_announcer = announcer
    # Feature flags: rules kept in memory, dropped when any instance announces a change.
    flags = FeatureFlags(RuleSets(db, resources.cache, broadcaster))
    await flags.rule_sets.start()
    app.state.feature_flags = flags
    # The embedded default runs no worker: the index follows writes in this process.
    indexer = InProcessIndexer(resources)
    indexes_in_process = settings.search.indexes_in_process(settings.database)
    if indexes_in_process:
        db.on_every_unit_of_work(indexer.bind)

    async def drain_live_connections() -> None:
        # Bounded: the server is told to stop once this is done (platform/shutdown.py).
        await broadcaster.drain("server shutting down", grace_seconds=1.0)

    try:
        with on_termination(drain_live_connections, asyncio.get_running_loop()):
            yield
    finally:
        await flags.rule_sets.close()
        flags.close()
        await principals.close()
        db.remove_unit_of_work_hook(principals.bind)
        if indexes_in_process:
            db.remove_unit_of_work_hook(indexer.bind)
        await broadcaster.drain("server shutting down", grace_seconds=1.0)
        await announcer.close()


def create_app_from_environment() -> FastAPI:
    """The entry point for ASGI servers, called with `--factory` (see `skilltree serve`)."""
    settings = load_settings()
    configure_logging(settings.log)
    configure_tracing(settings.tracing)
    app = create_app(settings)
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Take what exists once the app is built out of the garbage collector's sight.

    Modules, routes, schemas and table mappings (about 250,000 objects) live as long as the
    process, yet every full collection walks them all: a pause of 100 ms or more, which under
    load lands in the p99 latency. Frozen, they are never examined again; what requests create
    is collected as before.
    """
    gc.collect()
    gc.freeze()
