"""One settings class, read from the environment and an optional `.env` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote, urlencode

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ProcessRole(StrEnum):
    """Who a connection belongs to; carried in application_name and the Redis client name."""

    API = "api"
    CLI = "cli"
    WORKER = "worker"
    BACKUP = "backup"
    TEST = "test"
    BENCH = "bench"


class Settings(BaseSettings):
    """Every knob of the platform. Unset store URLs mean: use the embedded local stack."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # PostgreSQL
    database_url: str | None = Field(
        default=None,
        description="postgresql+psycopg://user:pass@host:5432/db; unset = embedded local stack",
    )
    database_replica_url: str | None = Field(
        default=None,
        description="a streaming replica for reads that tolerate lag (the hot template read "
        "while Redis is down, template search); unset = the primary serves them",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(
        default=2,
        ge=0,
        le=400,
        description="beyond DB_POOL_SIZE under bursts (2: the driver and statement pools "
        "carry most units of work since issues #20 and #24, and a worker's budget stays 46 "
        "connections)",
    )
    db_pool_timeout: float = Field(
        default=10.0, gt=0, description="seconds to wait for a pooled connection"
    )
    db_pool_recycle: int = Field(
        default=1800, ge=-1, description="seconds before a connection is replaced"
    )
    db_pool_pre_ping: bool = Field(
        default=True, description="test connections on checkout before use (one round trip)"
    )
    db_pool_ping_after_idle: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="with pre-ping on, test only connections idle at least this many "
        "seconds (0 = test on every checkout)",
    )
    db_read_pool_size: int = Field(
        default=16,
        ge=0,
        le=100,
        description="API only: connections per process for the hot read's fast path "
        "(GET template while Redis is unavailable); 0 = off, those reads go through the "
        "route and the main pool",
    )
    db_driver_pool_size: int = Field(
        default=10,
        ge=0,
        le=200,
        description="connections per process for units of work that run on the driver "
        "alone (the session lifecycle, the work queue: driver_pool.py); 0 = off, every unit "
        "of work goes through SQLAlchemy's pool; ignored behind PgBouncer",
    )
    db_statement_pool_size: int = Field(
        default=8,
        ge=0,
        le=200,
        description="connections per process (asyncpg) for the statements of units whose "
        "writes are each one statement and commit by themselves (a worker's claim, "
        "heartbeat, phase, completion, failure, log lines: postgres.StatementPool); 0 = "
        "off, they run on the driver pool; ignored behind PgBouncer",
    )
    db_connect_timeout: int = Field(default=2, ge=1, le=60, description="seconds")
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, description="0 = no limit")
    db_echo: bool = False
    db_pgbouncer: bool = Field(
        default=False,
        description="DATABASE_URL is a PgBouncer in transaction mode: no server-side "
        "prepared statements, no startup parameters, the statement timeout set per "
        "transaction (SET LOCAL)",
    )

    # PostgreSQL and Redis as separate parts (deploy area): the URLs are built from them,
    # with every part quoted, when DATABASE_URL / REDIS_URL are unset, so a password may
    # hold any character ('/', '@', ':', '%'…) without the operator encoding it.
    db_host: str | None = Field(
        default=None, description="PostgreSQL host; builds DATABASE_URL when that is unset"
    )
    db_port: int = Field(default=5432, ge=1, le=65535)
    db_name: str = Field(default="templator", min_length=1)
    db_user: str = Field(default="templator", min_length=1)
    db_password: SecretStr | None = None
    db_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = Field(default=None, description="libpq sslmode; verify-full in production")
    db_sslrootcert: Path | None = Field(
        default=None, description="CA certificate that signed the server's (verify-full)"
    )
    redis_host: str | None = Field(
        default=None, description="Redis host; builds REDIS_URL when that is unset"
    )
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_db: int = Field(default=0, ge=0, le=15)
    redis_username: str | None = Field(default=None, description="ACL user (Redis 6+)")
    redis_password: SecretStr | None = None
    redis_tls: bool = Field(default=False, description="rediss:// (TLS, certificate verified)")
    redis_ca_certs: Path | None = Field(
        default=None, description="CA certificate that signed the Redis server's (TLS)"
    )

    # Resilience (issue #10.3): how a lost or hung PostgreSQL is noticed and answered.
    db_tcp_keepalives_idle: int = Field(
        default=10, ge=1, le=7200, description="seconds idle before TCP keepalive probes start"
    )
    db_tcp_keepalives_interval: int = Field(
        default=5, ge=1, le=600, description="seconds between TCP keepalive probes"
    )
    db_tcp_keepalives_count: int = Field(
        default=3, ge=1, le=50, description="unanswered keepalive probes before the link is dead"
    )
    db_tcp_user_timeout_ms: int = Field(
        default=10_000,
        ge=0,
        description="drop a connection whose sent data stays unacknowledged this long "
        "(TCP_USER_TIMEOUT; 0 = the kernel's default)",
    )
    db_response_timeout: float | None = Field(
        default=None,
        ge=0,
        description="seconds the client waits for any answer from PostgreSQL before it "
        "closes the connection and answers 503 (a hung server answers nothing, not even "
        "its statement timeout); unset = statement timeout + DB_CONNECT_TIMEOUT, 0 = wait",
    )
    db_retry_after: int = Field(
        default=2, ge=1, le=3600, description="Retry-After seconds of a database_unavailable 503"
    )

    # Redis
    redis_url: str | None = Field(default=None, description="redis://host:6379/0; unset = embedded")
    redis_socket_timeout: float = Field(default=1.0, gt=0)
    redis_connect_timeout: float = Field(default=1.0, gt=0)
    redis_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="retries of a Redis command whose connection failed (closed, reset, "
        "refused), with exponential backoff; a timeout is not retried",
    )
    redis_max_connections: int = Field(default=50, ge=1)
    cache_ttl_seconds: int = Field(default=300, ge=1)
    cache_namespace: str = Field(default="templator", min_length=1, max_length=64)

    # Search
    search_rank_window: int = Field(
        default=200,
        ge=200,  # one full page of the largest `limit`
        le=10_000,
        description="a text search ranks the newest this many matches (all of them when "
        "there are fewer): its cost follows this window, not the number of templates",
    )

    # Security (area: sec): the schema owner for migrations; nothing in Redis is believed
    # without the application's proof; failed authentication and token lifetimes limited
    database_admin_url: str | None = Field(
        default=None,
        description="URL of the schema owner, which `templator db migrate|downgrade|reset|"
        "seed` use; unset = DATABASE_URL (the local stack sets its owner role's)",
    )
    cache_signing_key: SecretStr | None = Field(
        default=None,
        description="secret (at least 32 characters) every cached value is sealed with "
        "(keyed BLAKE2b); all API workers and CLI processes sharing a Redis must share it. "
        "Unset: CACHE_SIGNING_KEY_FILE, else the local stack's var/secrets file, else a "
        "random key per process (values then only trusted by the process that made them)",
    )
    cache_signing_key_file: Path | None = Field(
        default=None, description="file holding CACHE_SIGNING_KEY (mode 0600)"
    )
    token_max_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description="longest lifetime of an API token; a longer `expires_days` (or none) is 422",
    )
    auth_failure_limit: int = Field(
        default=20,
        ge=1,
        description="failed authentications per client address per window before 429",
    )
    auth_failure_window_seconds: int = Field(
        default=60, ge=1, le=3600, description="window of AUTH_FAILURE_LIMIT"
    )
    auth_epoch_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="seconds between re-reads of the authentication epoch (besides LISTEN; "
        "behind PgBouncer the only way a revocation made by another process is learnt): a "
        "lost connection is noticed within this and the deadline of a read, and until the "
        "epoch is read again no cached token record is believed",
    )

    # Object store (S3 protocol: MinIO, SeaweedFS, AWS S3)
    s3_endpoint_url: str | None = Field(
        default=None, description="endpoint the service itself uses; unset = embedded SeaweedFS"
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="endpoint browsers reach; presigned URLs are signed for it "
        "(default: s3_endpoint_url)",
    )
    s3_access_key: str = "templator"
    s3_secret_key: SecretStr = SecretStr("templator-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = Field(default="templator-assets", min_length=3, max_length=63)
    s3_connect_timeout: float = Field(default=2.0, gt=0)
    s3_read_timeout: float = Field(default=30.0, gt=0)
    # Object store providers (AWS S3 and friends); an empty S3_ACCESS_KEY means boto3's
    # default credential chain (environment, shared config, instance/IRSA roles).
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        default="path",
        description="path-style URLs (MinIO, SeaweedFS), virtual-hosted (AWS), or auto",
    )
    s3_create_bucket: bool = Field(
        default=True,
        description="create the bucket when it is missing; false = it must exist (credentials "
        "limited to the bucket need no CreateBucket right)",
    )
    s3_public_prefix_policy: bool = Field(
        default=False,
        description="apply a bucket policy making public/* anonymously readable; off = "
        "presigned URLs are the only way in",
    )
    s3_sse: Literal["none", "AES256", "aws:kms"] = Field(
        default="none", description="server-side encryption of every object stored"
    )
    s3_sse_kms_key_id: str | None = Field(
        default=None, description="with S3_SSE=aws:kms: the KMS key id (unset = the AWS key)"
    )
    upload_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    multipart_threshold_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    presign_default_expiry: int = Field(default=3600, ge=1, le=7 * 24 * 3600)

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64)
    api_opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry instrumentation (traces, metrics and "
        "logs through the global providers an OpenTelemetry SDK sets up); off by default: "
        "it adds a check to every request even with no SDK. /metrics is always on",
    )
    api_sse_max_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=24 * 3600,
        description="longest a live-progress stream (GET /sessions/{id}/events) stays open; "
        "the client reconnects for more",
    )
    idempotency_key_ttl_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 30,
        description="hours a create's Idempotency-Key replays its first answer; expired "
        "keys are pruned by `templator db optimize`",
    )
    direct_upload_expiry: int = Field(
        default=900,
        ge=60,
        le=7 * 24 * 3600,
        description="seconds a presigned POST for a direct design upload stays usable",
    )
    api_sse_max_streams_per_user: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="live-progress streams one user may hold open on one API worker; "
        "past it a new stream is refused (429 too_many_streams with Retry-After)",
    )
    api_sse_auth_check_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="how often an open live-progress stream checks that its token is "
        "still valid; a revoked or expired token ends the stream within this time",
    )
    # Connection limits (cli/protocol.py, uvicorn): each bounds one way to hold a worker.
    api_max_connections: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="open connections per API worker; a connection past it is answered "
        "503 and closed at once",
    )
    api_max_requests: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="requests in flight per API worker (open event streams included); "
        "past it uvicorn answers 503 (its limit_concurrency, which also counts open "
        "connections against it)",
    )
    api_backlog: int = Field(
        default=2048, ge=1, le=65535, description="connections the kernel queues unaccepted"
    )
    api_header_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="seconds a client has to send a request's line and headers, from its "
        "first byte (or from connecting); past it: 408 and the connection is closed",
    )
    api_body_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="seconds a client has to send a whole request body once its headers "
        "are in; past it: 408 and the connection is closed",
    )
    api_max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="bytes of request line and headers a request may have (431 past it)",
    )
    api_keep_alive_timeout: int = Field(
        default=5,
        ge=1,
        le=600,
        description="seconds an idle keep-alive connection stays open between requests",
    )
    # The work queue (docs/work-queue.md).
    work_rescue_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="how often each API process returns sessions whose lease expired to the "
        "queue (or fails them after their last attempt); also how late a retry whose "
        "backoff ended wakes a waiting claim at most",
    )
    work_retry_base_seconds: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="backoff before a session's retry: base x 2^(attempt-1), capped by "
        "WORK_RETRY_MAX_SECONDS, of which a random half is waited (equal jitter)",
    )
    work_retry_max_seconds: float = Field(
        default=300.0, ge=0, le=86400, description="longest backoff before a retry"
    )
    # Deployment (deploy area): uvicorn's supervisor knobs `templator serve` passes on.
    api_worker_healthcheck_timeout: int = Field(
        default=30,
        ge=1,
        le=600,
        description="seconds a worker process may take to start (import the app) and to "
        "answer the supervisor's liveness check before it is killed and replaced; "
        "uvicorn's own 5 s crash-loops a busy small host",
    )
    api_forwarded_allow_ips: str = Field(
        default="",
        description="comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For/-Proto headers are trusted; empty (the default) = none: the "
        "client is the peer of the connection. '*' = any: only behind a proxy that is the "
        "sole way in (the failed-authentication limit counts the address found here)",
    )

    # Monitoring (metrics, dashboard: monitoring/, api/dashboard.py)
    monitoring_token: SecretStr | None = Field(
        default=None,
        description="bearer token /metrics and /health/ready require (`Authorization: "
        "Bearer <token>`); unset (and no MONITORING_TOKEN_FILE) = open, as /health always "
        "is. They show versions, row counts, paths and backup age: set it wherever the API "
        "port is reachable by more than the scraper",
    )
    monitoring_token_file: Path | None = Field(
        default=None,
        description="file holding MONITORING_TOKEN (a compose secret the scraper reads too)",
    )
    metrics_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="seconds /metrics reuses the figures of PostgreSQL, Redis, disk and "
        "domain before asking the stores again",
    )
    metrics_object_store_seconds: float = Field(
        default=60.0, ge=0, le=86400, description="the same for the bucket listing"
    )
    metrics_store_timeout: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="seconds a scrape waits for a store; a store slower than this is "
        "reported down and the scrape is answered without waiting",
    )
    metrics_pool_sample_seconds: float = Field(
        default=1.0, gt=0, le=60, description="how often each worker writes its pool gauges"
    )
    metrics_history_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="the dashboard's charts: one point of throughput and latency per this "
        "many seconds, the last hour kept in each API process",
    )
    dashboard_enabled: bool = Field(
        default=True, description="serve the operator dashboard at /dashboard (ADMIN token)"
    )

    # Local stack
    var_dir: Path = Field(
        default=PROJECT_ROOT / "var", description="data of the embedded local stack"
    )

    # Backups
    backup_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "backups", description="where `templator backup` writes"
    )
    # Backups (issue #12): destination, encryption, parallelism, retention.
    backup_repository: str | None = Field(
        default=None,
        description="a folder path or s3://bucket/prefix; unset = BACKUP_DIR",
    )
    backup_encryption_key_file: Path | None = Field(
        default=None,
        description="file with the key every set is encrypted with "
        "(`templator backup keygen -o FILE`); unset = sets are not encrypted",
    )
    backup_s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint of an s3:// repository (default: S3_ENDPOINT_URL)"
    )
    backup_s3_access_key: str | None = Field(
        default=None, description="access key of an s3:// repository (default: S3_ACCESS_KEY)"
    )
    backup_s3_secret_key: SecretStr | None = Field(
        default=None, description="secret of an s3:// repository (default: S3_SECRET_KEY)"
    )
    backup_jobs: int = Field(
        default=2, ge=1, le=64, description="parallel pg_dump/pg_restore jobs and object copies"
    )
    backup_pitr: bool = Field(
        default=True,
        description="use pgBackRest (base backups + WAL archive) when the server is the "
        "embedded one; false = always the logical pg_dump path",
    )
    backup_keep_daily: int = Field(default=7, ge=0, description="sets kept: newest of each day")
    backup_keep_weekly: int = Field(default=4, ge=0, description="newest of each ISO week")
    backup_keep_monthly: int = Field(default=6, ge=0, description="newest of each month")

    @property
    def monitoring_secret(self) -> bytes | None:
        """MONITORING_TOKEN, else the content of MONITORING_TOKEN_FILE, else None (open)."""
        if self.monitoring_token is not None:
            return self.monitoring_token.get_secret_value().encode()
        if self.monitoring_token_file is not None:
            return self.monitoring_token_file.read_text().strip().encode() or None
        return None

    @property
    def db_client_deadline(self) -> float | None:
        """Seconds to wait for any answer from PostgreSQL, or None for no bound."""
        if self.db_response_timeout is not None:
            return self.db_response_timeout or None
        if self.db_statement_timeout_ms == 0:
            return None
        return self.db_statement_timeout_ms / 1000 + self.db_connect_timeout

    @field_validator("db_response_timeout", mode="before")
    @classmethod
    def _blank_is_derived(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url", "database_replica_url", "database_admin_url")
    @classmethod
    def _async_driver(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Accept plain postgresql:// URLs and pin the psycopg 3 driver."""
        if value is None or value == "":
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith("postgresql+psycopg://"):
            name = (info.field_name or "database_url").upper()
            raise ValueError(f"{name} must start with postgresql:// or postgresql+psycopg://")
        return value

    @field_validator("cache_signing_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError("CACHE_SIGNING_KEY must be at least 32 characters")
        return value

    def s3_static_keys(self) -> dict[str, str]:
        """boto3's key arguments when S3_ACCESS_KEY is set; none when it is empty, so
        boto3's default credential chain (environment, shared config, instance profile,
        IRSA web identity) applies."""
        if not self.s3_access_key:
            return {}
        return {
            "aws_access_key_id": self.s3_access_key,
            "aws_secret_access_key": self.s3_secret_key.get_secret_value(),
        }

    @field_validator(
        "redis_url", "s3_endpoint_url", "s3_public_endpoint_url", "backup_s3_endpoint_url"
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _urls_from_parts(self) -> Self:
        """DATABASE_URL / REDIS_URL from DB_* / REDIS_* when only the parts are set."""
        if self.database_url is None and self.db_host:
            self.database_url = database_url_from_parts(self)
        if self.redis_url is None and self.redis_host:
            self.redis_url = redis_url_from_parts(self)
        return self


def database_url_from_parts(settings: Settings) -> str:
    """postgresql+psycopg:// URL of DB_HOST & co., user and password percent-encoded."""
    from sqlalchemy.engine import URL  # here: the settings load without SQLAlchemy

    query: dict[str, str] = {}
    if settings.db_sslmode:
        query["sslmode"] = settings.db_sslmode
    if settings.db_sslrootcert:
        query["sslrootcert"] = str(settings.db_sslrootcert)
    url = URL.create(
        "postgresql+psycopg",
        username=settings.db_user,
        password=settings.db_password.get_secret_value() if settings.db_password else None,
        host=settings.db_host,
        port=settings.db_port,
        database=settings.db_name,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def redis_url_from_parts(settings: Settings) -> str:
    """redis:// (or rediss://) URL of REDIS_HOST & co., credentials percent-encoded."""
    user = quote(settings.redis_username or "", safe="")
    secret = settings.redis_password.get_secret_value() if settings.redis_password else ""
    auth = f"{user}:{quote(secret, safe='')}@" if user or secret else ""
    host = settings.redis_host or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    query: dict[str, str] = {}
    if settings.redis_tls:
        query["ssl_cert_reqs"] = "required"
        if settings.redis_ca_certs:
            query["ssl_ca_certs"] = str(settings.redis_ca_certs)
    scheme = "rediss" if settings.redis_tls else "redis"
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{scheme}://{auth}{host}:{settings.redis_port}/{settings.redis_db}{suffix}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
