"""12-factor configuration: environment variables, an optional .env file, and secret files.

Settings are split per concern, each group with its own `SKILLTREE_<GROUP>_` prefix, so a reader
finds the database knobs in DatabaseSettings rather than in one giant class. Any setting can
also be read from a file named by `<VARIABLE>_FILE` (Docker and Kubernetes secrets mount files,
not variables). `load_settings()` validates every group and reports every bad setting at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

Environment = Literal["development", "test", "production"]
ENV_PREFIX = "SKILLTREE_"
DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/skilltree.db"
# Values that must never protect a real deployment.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "development-only-secret"})


class SecretFileSource(PydanticBaseSettingsSource):
    """Reads `<VARIABLE>_FILE`: the path of a file whose content is the setting's value."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        prefix = str(self.config.get("env_prefix", ""))
        variable = f"{prefix}{field_name}".upper() + "_FILE"
        path = os.environ.get(variable)
        if path is None:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as error:
            raise ValueError(f"{variable}={path} cannot be read: {error.strerror}") from error

    def _decoded(self, field_name: str, field: FieldInfo, value: str) -> Any:
        # A list or model (the OIDC providers) is JSON in the file, as in the variable.
        try:
            return self.prepare_field_value(field_name, field, value, False)
        except ValueError as error:
            prefix = str(self.config.get("env_prefix", ""))
            variable = f"{prefix}{field_name}".upper() + "_FILE"
            raise ValueError(f"{variable} does not hold valid JSON: {error}") from error

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = self._decoded(field_name, field, value)
        return values


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win, then the process environment, then secret files, then .env.
        return (init_settings, env_settings, SecretFileSource(settings_cls), dotenv_settings)


class AppSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    env: Environment = "development"
    # The root of every key skilltree derives (JWT signing, ...); must be real in production.
    secret_key: SecretStr = SecretStr("development-only-secret")
    # Keys rotated out: tokens signed with them still verify until they expire.
    previous_secret_keys: list[SecretStr] = Field(default_factory=list)


SUPPORTED_URL_PREFIXES = (
    "sqlite+aiosqlite://",
    "postgresql+asyncpg://",
    "mysql+asyncmy://",
    "mariadb+asyncmy://",
)


class DatabaseSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}DATABASE_")

    url: str = DEFAULT_SQLITE_URL
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)
    pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # Requests that may wait for a connection once all are busy; the next one is answered 503
    # with Retry-After at once (load shedding, platform/fair_pool.py). 0: never wait.
    pool_max_waiting: int = Field(default=64, ge=0, le=100_000)
    # An overflow connection (beyond pool_size) that comes back while pool_size connections are
    # idle is kept for the next request, and closed once it has been idle this long; 0 closes
    # it at once (SQLAlchemy's own rule). Load that hovers around pool_size would otherwise open
    # and close connections several times a second (platform/fair_pool.py, decision 0075).
    pool_overflow_idle_seconds: float = Field(default=30.0, ge=0, le=86_400)
    # Connections older than this are replaced, so a proxy or firewall never drops one in use.
    pool_recycle_seconds: int = Field(default=1800, ge=-1)
    # Check connections as they leave the pool, so one killed by a failover or an idle timeout
    # is replaced before a request uses it (platform/db.py): one the driver knows is closed is
    # replaced at no cost; one idle longer than `pool_ping_idle_seconds` is pinged first (a
    # round trip); a hot one is used as it is. 0 pings every checkout.
    pool_pre_ping: bool = True
    pool_ping_idle_seconds: float = Field(default=10.0, ge=0, le=86_400)
    statement_timeout_ms: int = Field(default=15_000, ge=0)
    # PostgreSQL reached through PgBouncer in transaction mode (docs/databases.md): no named
    # prepared statement outlives its transaction, and no startup parameter PgBouncer refuses.
    pgbouncer: bool = False
    # A PostgreSQL streaming replica that serves reading requests (docs/databases.md, "Read
    # replicas"). Unset: everything reads the primary.
    replica_url: str | None = None
    # The replica is used while it is at most this far behind the primary; a client reads from the
    # primary for this long plus one check after its own write (read-your-writes).
    replica_max_lag_seconds: float = Field(default=5.0, gt=0, le=3600)
    # How often the replica's lag is measured (at most; only while requests read).
    replica_check_seconds: float = Field(default=1.0, gt=0, le=60)

    @field_validator("replica_url")
    @classmethod
    def _postgresql_replica(cls, url: str | None) -> str | None:
        if not url:
            return None
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        if not url.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql:// URL (read replicas are PostgreSQL's)")
        return url

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, url: str) -> str:
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        # MariaDB and MySQL speak one protocol; asyncmy drives both (docs/decisions/0028).
        for scheme in ("mysql", "mariadb"):
            if url.startswith(f"{scheme}://"):
                url = f"{scheme}+asyncmy://" + url.split("://", 1)[1]
        if not url.startswith(SUPPORTED_URL_PREFIXES):
            raise ValueError(
                "must be a sqlite+aiosqlite://, postgresql+asyncpg://, mysql+asyncmy:// "
                "or mariadb+asyncmy:// URL"
            )
        return url

    @model_validator(mode="after")
    def _replica_of_postgresql(self) -> DatabaseSettings:
        if self.replica_url and not self.url.startswith("postgresql"):
            raise ValueError("replica_url needs a PostgreSQL primary (url)")
        return self

    @property
    def read_your_writes_seconds(self) -> float:
        """How long a client reads from the primary after it wrote: longer than any lag the
        replica is used with, plus the resolution of the lag's measurement."""
        return self.replica_max_lag_seconds + self.replica_check_seconds

    @property
    def is_mysql(self) -> bool:
        """MySQL or MariaDB (one dialect family, one driver)."""
        return self.url.startswith(("mysql", "mariadb"))

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class HttpSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}HTTP_")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Request bodies larger than this are refused with 413 before the app reads them.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    workers: int = Field(default=1, ge=1, le=64)
    # Proxies (IPs or CIDR networks) whose X-Forwarded-For / -Proto are believed. Empty: none,
    # so a client cannot claim another address by sending the header itself.
    trusted_proxies: list[str] = Field(default_factory=list)
    # How long browsers and shared caches may reuse a public roadmap (tree, topic) unrevalidated.
    public_max_age_seconds: int = Field(default=300, ge=0, le=7 * 24 * 3600)
    # Smaller bodies are sent as they are: compressing them costs more than it saves.
    compression_min_bytes: int = Field(default=1024, ge=0)
    # Compressed bodies remembered per process, so bytes sent again are not compressed again.
    compression_memo_bytes: int = Field(default=16 * 1024 * 1024, ge=0, le=1024 * 1024 * 1024)
    # Cached public reads (a roadmap's tree, a topic) answered at the front of the middleware
    # stack from the cache's local copies (platform/http/fast_path.py, decision 0055).
    fast_path: bool = True
    # Admission control (platform/http/admission.py, decision 0060): requests this worker runs at
    # once; beyond them, up to `max_waiting` wait in line, each at most `max_wait_seconds`, and
    # any other is answered 503 with Retry-After at once. Probes, /metrics and live streams are
    # never counted. 0 in flight: no bound.
    max_in_flight: int = Field(default=64, ge=0, le=100_000)
    max_waiting: int = Field(default=1024, ge=0, le=100_000)
    max_wait_seconds: float = Field(default=0.5, ge=0, le=60)
    # How long a stored response answers retries that carry the same Idempotency-Key.
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    # How long an Idempotency-Key claim holds while its request runs, renewed every third of it
    # (decision 0015): a retry after a request that died waits at most this long.
    idempotency_lease_seconds: float = Field(default=30.0, ge=0.3, le=3600)
    # After SIGTERM: seconds of answering /readyz with 503 while still serving, so balancers
    # stop sending before the server stops listening (platform/http/serving.py).
    drain_seconds: float = Field(default=5.0, ge=0, le=300)
    # Then: the longest wait for requests in flight before they are cut off.
    graceful_shutdown_seconds: int = Field(default=20, ge=1, le=3600)
    # How long an idle keep-alive connection stays open. Longer than the proxy in front keeps
    # its idle connections to the instances (nginx's upstream keepalive_timeout, 60 s in
    # deploy/nginx/skilltree.conf): if the instance closed first, a request the proxy sent as
    # it closed would be reset, and the proxy would count a healthy instance as failed.
    keep_alive_seconds: int = Field(default=75, ge=1, le=3600)
    # permessage-deflate on WebSockets (rooms, GraphQL subscriptions): off, decision 0054 —
    # it compresses every frame once per socket and keeps a compressor per socket.
    ws_per_message_deflate: bool = False


class LogSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}LOG_")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # JSON lines for machines; "console" renders the same events readably for a terminal.
    format: Literal["json", "console"] = "json"
    access_log: bool = True


class ImportSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}IMPORT_")

    max_bytes: int = Field(default=1_048_576, ge=1, le=64 * 1024 * 1024)
    max_depth: int = Field(default=8, ge=1, le=32)
    max_topics: int = Field(default=5_000, ge=1, le=100_000)


class MailSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}MAIL_")

    # Where the embedded default writes each outgoing message as an .eml file.
    outbox_dir: Path = Path("var/outbox")
    sender: str = "skilltree <no-reply@skilltree.localhost>"
    # Links in e-mails (verification, reset) point here.
    public_url: str = "http://127.0.0.1:8000"
    # "outbox" writes .eml files (the embedded default); "smtp" sends through the task queue.
    transport: Literal["outbox", "smtp"] = "outbox"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # "starttls" upgrades a plain connection (port 587); "tls" is implicit TLS (port 465).
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=300)


class QueueSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}QUEUE_")

    # "database" needs no server (the embedded default); "rabbitmq" is for production.
    broker: Literal["database", "rabbitmq"] = "database"
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    # The queue (RabbitMQ) or queue name (database) this deployment's workers consume.
    name: str = Field(default="skilltree", min_length=1, max_length=100)
    # Tasks one worker process runs at the same time.
    concurrency: int = Field(default=4, ge=1, le=256)
    # On SIGTERM a worker takes no new task and waits this long for running ones, then exits.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Database broker: a claimed task whose worker died becomes visible again after this long.
    # Tasks must finish well within it; their own timeout label is checked against it.
    lease_seconds: float = Field(default=300.0, ge=1, le=86_400)
    # Database broker and relay: how often an idle poller looks for new rows.
    poll_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    relay_batch_size: int = Field(default=100, ge=1, le=10_000)
    # How often the scheduler checks whether a cron tick is due.
    scheduler_interval_seconds: float = Field(default=15.0, gt=0, le=3600)


class WebhookSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}WEBHOOKS_")

    # Only for tests and closed networks: lets endpoints resolve to loopback/private addresses.
    allow_private_addresses: bool = False
    # Only for tests: allows http:// endpoint URLs (production requires https).
    allow_http: bool = False
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Responses are read up to this many bytes; the rest is never downloaded.
    max_response_bytes: int = Field(default=64 * 1024, ge=256, le=10 * 1024 * 1024)
    # An endpoint whose deliveries have all failed for this long is disabled and its owner told.
    disable_after_hours: float = Field(default=72.0, gt=0, le=24 * 60)
    # Circuit breaker: this many consecutive failures open it for `breaker_open_seconds`.
    breaker_failure_threshold: int = Field(default=5, ge=1, le=1000)
    breaker_open_seconds: float = Field(default=60.0, gt=0, le=86_400)


class OidcProvider(BaseModel):
    """An OpenID Connect provider people may sign in with (a company IdP, Google, GitLab...)."""

    model_config = ConfigDict(frozen=True)

    # In URLs: /v1/auth/oidc/<name>/login.
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    # The issuer identifier; discovery is read from <issuer>/.well-known/openid-configuration.
    issuer: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])

    @field_validator("issuer")
    @classmethod
    def _secure_issuer(cls, issuer: str) -> str:
        # Imported only when a provider is configured: see accounts/oidc.py.
        from authlib.common.security import is_secure_transport

        # Tokens travel over this connection: https, or http on loopback (local providers).
        if not is_secure_transport(issuer):
            raise ValueError("must be an https:// URL (or http:// on loopback)")
        return issuer.rstrip("/")

    @field_validator("scopes")
    @classmethod
    def _openid_scope(cls, scopes: list[str]) -> list[str]:
        if "openid" not in scopes:
            raise ValueError("must include 'openid'")
        return scopes


class AuthSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}AUTH_")

    session_cookie: str = "skilltree_session"
    # An idle session ends after this long without a request; every request slides it.
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # However active, a session ends this long after sign-in.
    session_absolute_hours: int = Field(default=7 * 24, ge=1, le=90 * 24)
    # Secure cookies are only sent over https; turn off only for plain-http localhost.
    cookie_secure: bool = True
    email_verification_hours: int = Field(default=24, ge=1, le=24 * 14)
    password_reset_minutes: int = Field(default=60, ge=5, le=24 * 60)
    access_token_minutes: int = Field(default=10, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    # The `iss` and `aud` claims of access tokens (names, not secrets).
    token_issuer: str = "skilltree"  # noqa: S105
    token_audience: str = "skilltree-api"  # noqa: S105
    # Origins allowed to make cookie-authenticated unsafe requests and CORS requests.
    allowed_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8000"])
    # OpenID Connect providers, as a JSON list (see docs/configuration.md).
    oidc_providers: list[OidcProvider] = Field(default_factory=list)
    # The caller behind a token, cookie or API key is kept in each process's memory for at most
    # this long (accounts/principal_cache.py); every revocation is pushed to every instance, so
    # this bounds only what a lost push could leave stale. 0: look the caller up every request.
    principal_cache_seconds: float = Field(default=30.0, ge=0, le=3600)
    principal_cache_size: int = Field(default=10_000, ge=1, le=1_000_000)


class RateLimitSettings(_Group):
    # Only what was set is parsed at start-up: parsing loads `limits` and its storage backends,
    # which no command should pay for; the defaults are checked by the settings tests.
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}RATE_LIMIT_", validate_default=False)

    enabled: bool = True
    # "<count>/<period>" or "<count> per <n> <period>" (second, minute, hour, day).
    auth: str = "10/minute"  # sign-in, sign-up, resets: per client IP
    write: str = "120/minute"  # other changes: per credential, or IP when anonymous
    read: str = "1200/minute"  # reads: per credential, or IP when anonymous
    # Credentials refused (401), per client IP: beyond it, that address's credentials this
    # process does not know are refused before they are looked up (decision 0081).
    refused: str = "60/minute"
    # With Redis, an instance takes up to this many requests of a caller's quota in one round
    # trip and spends them locally for at most `lease_seconds`; never more than 1 % of the
    # quota, so small quotas stay exact (1 disables leases; decision 0055).
    lease_max: int = Field(default=32, ge=1, le=1000)
    lease_seconds: float = Field(default=1.0, gt=0, le=10)

    @field_validator("auth", "write", "read", "refused")
    @classmethod
    def _parsable(cls, value: str) -> str:
        from limits import parse  # here: see model_config

        try:
            parse(value)
        except ValueError as error:
            raise ValueError("must look like '10/minute' or '100 per 5 minutes'") from error
        return value


class RedisSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}REDIS_")

    # Unset in the embedded default: sessions and sign-in throttles then live in the database.
    # Set (redis://host:6379/0) in production, where every instance shares them through Redis.
    url: str | None = None
    # Every key starts with this, so one Redis can serve several installations (and tests).
    key_prefix: str = Field(default="skilltree:", min_length=1, max_length=64)
    # A Redis that does not answer in time fails the request instead of hanging it.
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    # Connections of the shared client per process. When all are busy a request waits for one
    # (up to timeout_seconds), as for a database connection, rather than failing at once.
    max_connections: int = Field(default=100, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return url


class CacheSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}CACHE_")

    # Off: every read goes to the database (for comparing, or ruling the cache out).
    enabled: bool = True
    # Public roadmap trees and topics change only when edited, and edits invalidate them:
    # the TTL only bounds how long an invalidation lost to a Redis outage can go unnoticed.
    roadmap_ttl_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    # A learner's progress and summary: invalidated on every change of theirs.
    progress_ttl_seconds: int = Field(default=300, ge=1, le=24 * 3600)
    badge_ttl_seconds: int = Field(default=300, ge=1, le=24 * 3600)
    # In-process cache (no SKILLTREE_REDIS_URL): the least recently used entries go beyond this
    # (and namespace tokens beyond as many); local_max_bytes bounds their bytes.
    memory_max_entries: int = Field(default=10_000, ge=10, le=10_000_000)
    # The longest a recompute may hold its key's lock; requests waiting for it wait no longer.
    lock_seconds: float = Field(default=5.0, gt=0, le=60)
    # With Redis: values this process read or wrote lately are also kept in its memory, up to
    # this many bytes, so a hit reads only the small namespace tokens from Redis (0: off).
    # Without Redis: the in-process cache's values themselves, kept once (0: none cached).
    local_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0, le=1024 * 1024 * 1024)
    # With Redis: namespace tokens this process read are trusted without asking Redis again
    # while every instance's invalidations reach it by pub/sub, for at most this long (which
    # bounds what a lost announcement can leave stale). 0: every read asks Redis (decision 0055).
    token_trust_seconds: float = Field(default=30.0, ge=0, le=3600)


class MetricsSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}METRICS_")

    # GET /metrics (Prometheus); off answers 404 (docs/observability.md, "Metrics").
    enabled: bool = True


class ProgressSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}PROGRESS_")

    # Longer notes are refused with 413; the rendered HTML is stored beside the markdown.
    note_max_chars: int = Field(default=20_000, ge=100, le=1_000_000)
    # How long browsers and README image proxies may cache a progress badge.
    badge_max_age_seconds: int = Field(default=300, ge=0, le=86_400)


class TracingSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}TRACING_")

    # OpenTelemetry spans for requests, SQL, Redis, outgoing HTTP and tasks, and trace ids in
    # every log line (docs/observability.md, "Tracing"). Off: nothing is recorded.
    enabled: bool = False
    # Where finished spans go: an OTLP/HTTP collector, or nowhere (ids in the logs only).
    exporter: Literal["otlp", "none"] = "otlp"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = Field(default="skilltree", min_length=1, max_length=100)
    # Share of new traces recorded; a trace begun upstream keeps its caller's decision.
    sample_ratio: float = Field(default=1.0, ge=0, le=1)


class FilesSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}FILES_")

    # Local disk storage (the embedded default): every object lives under this directory.
    storage_dir: Path = Path("var/files")
    # One note attachment; larger ones are refused with 413 while they stream in.
    attachment_max_bytes: int = Field(default=250 * 1024 * 1024, ge=1024)
    # Every file of one learner together; an upload beyond it is refused with 507.
    quota_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    # Decompression-bomb guard: images whose header claims more pixels are refused.
    image_max_pixels: int = Field(default=40_000_000, ge=1)
    # One avatar (PNG, JPEG, WebP or GIF); a larger one is refused with 413 while it streams in.
    avatar_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # How long browsers and shared caches may keep a public avatar before asking again.
    avatar_max_age_seconds: int = Field(default=3600, ge=0, le=7 * 86_400)
    # How long a signed download link stays valid.
    download_url_ttl_seconds: int = Field(default=900, ge=10, le=7 * 86_400)
    # A resumable (tus) upload not finished this long after its creation is deleted.
    upload_expiry_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    # Where the bytes live: "local" (storage_dir) or "s3" (any S3-compatible bucket).
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str = ""
    # Empty: AWS itself; otherwise the S3-compatible server (MinIO, Ceph, R2, ...).
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    # Empty: botocore's usual chain (environment, instance profile, web identity...).
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    # Uploads stream to S3 in parts of this size (one part is held in memory per upload).
    s3_part_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024, le=5 * 1024**3)

    @field_validator("s3_bucket")
    @classmethod
    def _bucket_for_s3(cls, bucket: str, info: ValidationInfo) -> str:
        if info.data.get("storage") == "s3" and not bucket:
            raise ValueError("SKILLTREE_FILES_S3_BUCKET is required when FILES_STORAGE is s3")
        return bucket


class SearchSettings(_Group):
    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}SEARCH_")

    # Whether the process that commits a change also brings the search index up to date right
    # after (docs/search.md). "auto": on SQLite, the embedded default, which runs no worker to
    # consume the events; elsewhere the worker's consumer does it.
    index_in_process: Literal["auto", "on", "off"] = "auto"

    def indexes_in_process(self, database: DatabaseSettings) -> bool:
        if self.index_in_process == "auto":
            return database.is_sqlite
        return self.index_in_process == "on"


class RealtimeSettings(_Group):
    """Server-sent events and study rooms (docs/realtime.md)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}REALTIME_")

    # What an SSE stream tells the client to wait before reconnecting (the `retry:` field).
    retry_ms: int = Field(default=3000, ge=100, le=600_000)
    # A comment line this often keeps proxies from closing a quiet stream.
    heartbeat_seconds: float = Field(default=15.0, gt=0, le=300)
    # A stream ends after this long; the client reconnects (and re-authenticates).
    stream_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    # How often a long-lived stream checks that its sign-in is still valid.
    credential_check_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Messages kept per channel for Last-Event-ID resume.
    history_size: int = Field(default=100, ge=1, le=10_000)
    # Messages a connection may have waiting to be sent before it is closed as too slow.
    send_queue: int = Field(default=256, ge=1, le=100_000)
    ticket_seconds: int = Field(default=30, ge=1, le=600)
    presence_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Joins and leaves are announced to a room at most once per this interval (decision 0050).
    presence_batch_seconds: float = Field(default=0.25, gt=0, le=10)
    max_message_chars: int = Field(default=2000, ge=1, le=100_000)
    # Chat messages per connection and window; more is refused, far more closes the socket.
    rate_messages: int = Field(default=20, ge=1, le=10_000)
    rate_window_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Entries one reconnect may replay; a client further behind reloads the history page.
    replay_limit: int = Field(default=500, ge=1, le=10_000)
    typing_interval_seconds: float = Field(default=2.0, ge=0, le=60)


class GraphQLSettings(_Group):
    """The GraphQL endpoint's protections (docs/api-styles.md)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}GRAPHQL_")

    enabled: bool = True
    # The schema answers __schema/__type queries; None: on, except in production.
    introspection: bool | None = None
    # A query nested deeper than this is refused before it runs.
    max_depth: int = Field(default=12, ge=2, le=64)
    # Aliases multiply the work of one document; more than this is refused.
    max_aliases: int = Field(default=15, ge=1, le=1000)
    # Tokens in one document (names, punctuation, values): bounds parsing work.
    max_tokens: int = Field(default=2000, ge=50, le=100_000)
    # The GraphiQL page at GET /graphql (Accept: text/html), its assets served from the
    # package; None: on, except in production.
    ide: bool | None = None
    # Run only documents named by a registered hash (persisted_queries_file); refuse the rest.
    persisted_only: bool = False
    # A JSON object {"<sha256 of the document>": "<document>"}: the registered documents.
    persisted_queries_file: Path | None = None
    # Documents learned from clients (automatic persisted queries), per process, newest kept.
    persisted_cache_size: int = Field(default=1000, ge=0, le=100_000)
    # Operations one WebSocket may run at once (each subscription holds one).
    socket_operations: int = Field(default=10, ge=1, le=1000)


class GrpcSettings(_Group):
    """`skilltree grpc`: the gRPC server beside the HTTP one (docs/api-styles.md)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}GRPC_")

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=1, le=65535)
    # After SIGTERM: the health service says NOT_SERVING, streams end, and calls in flight get
    # this long to finish before they are cancelled.
    graceful_shutdown_seconds: float = Field(default=10.0, ge=0, le=3600)
    # How often the health service asks the database (and Redis) whether they answer.
    health_check_seconds: float = Field(default=5.0, gt=0, le=300)
    # The largest request message accepted (gRPC's own default is 4 MiB).
    max_receive_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)


class Settings(BaseModel):
    """Everything the app factory needs, passed in: nothing reads the environment later."""

    app: AppSettings = Field(default_factory=AppSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    importing: ImportSettings = Field(default_factory=ImportSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    progress: ProgressSettings = Field(default_factory=ProgressSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    files: FilesSettings = Field(default_factory=FilesSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    graphql: GraphQLSettings = Field(default_factory=GraphQLSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    grpc: GrpcSettings = Field(default_factory=GrpcSettings)


class SettingsError(Exception):
    """Raised by load_settings with one line per bad setting, named by its environment variable."""


_GROUPS: dict[str, type[_Group]] = {
    "app": AppSettings,
    "database": DatabaseSettings,
    "http": HttpSettings,
    "log": LogSettings,
    "importing": ImportSettings,
    "mail": MailSettings,
    "auth": AuthSettings,
    "queue": QueueSettings,
    "webhooks": WebhookSettings,
    "redis": RedisSettings,
    "rate_limit": RateLimitSettings,
    "progress": ProgressSettings,
    "cache": CacheSettings,
    "metrics": MetricsSettings,
    "tracing": TracingSettings,
    "realtime": RealtimeSettings,
    "graphql": GraphQLSettings,
    "grpc": GrpcSettings,
}


def load_settings() -> Settings:
    """Read and validate every settings group, reporting all problems together."""
    groups: dict[str, _Group] = {}
    problems: list[str] = []
    for name, group in _GROUPS.items():
        try:
            groups[name] = group()
        except ValidationError as error:
            problems.extend(_describe(group, error))
        except ValueError as error:  # an unreadable *_FILE
            problems.append(str(error))
    if problems:
        raise SettingsError("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
    settings = Settings.model_validate(groups)
    problems = _production_problems(settings)
    if problems:
        raise SettingsError("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
    return settings


# Settings whose values contain secrets: never echoed in error messages.
_SECRET_BEARING = ("secret", "oidc_providers")


def _describe(group: type[_Group], error: ValidationError) -> list[str]:
    prefix = str(group.model_config.get("env_prefix", ""))
    lines = []
    for item in error.errors():
        field = "_".join(str(part) for part in item["loc"])
        # Echo the offending value unless the field holds a secret.
        holds_secret = any(word in field for word in _SECRET_BEARING)
        shown = "" if holds_secret else f" (got {item.get('input')!r})"
        lines.append(f"{prefix}{field.upper()}: {item['msg']}{shown}")
    return lines


def _production_problems(settings: Settings) -> list[str]:
    if settings.app.env == "development":
        return []
    if settings.app.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
        return [
            f"{ENV_PREFIX}SECRET_KEY: a real secret is required when {ENV_PREFIX}ENV is "
            f"{settings.app.env!r}"
        ]
    return []
