"""One settings class, read from the environment and an optional `.env` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
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
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=20, ge=0, le=400)
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
    db_connect_timeout: int = Field(default=2, ge=1, le=60, description="seconds")
    db_statement_timeout_ms: int = Field(default=30_000, ge=0, description="0 = no limit")
    db_echo: bool = False

    # Redis
    redis_url: str | None = Field(default=None, description="redis://host:6379/0; unset = embedded")
    redis_socket_timeout: float = Field(default=1.0, gt=0)
    redis_connect_timeout: float = Field(default=1.0, gt=0)
    redis_retries: int = Field(default=3, ge=0, le=10)
    redis_max_connections: int = Field(default=50, ge=1)
    cache_ttl_seconds: int = Field(default=300, ge=1)
    cache_namespace: str = Field(default="templator", min_length=1, max_length=64)

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
        "its per-request check costs about 10 µs even with no SDK. /metrics is always on",
    )

    # Local stack
    var_dir: Path = Field(
        default=PROJECT_ROOT / "var", description="data of the embedded local stack"
    )

    # Backups
    backup_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "backups", description="where `templator backup` writes"
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        """Accept plain postgresql:// URLs and pin the psycopg 3 driver."""
        if value is None or value == "":
            return None
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError("DATABASE_URL must start with postgresql:// or postgresql+psycopg://")
        return value

    @field_validator("database_admin_url")
    @classmethod
    def _admin_driver(cls, value: str | None) -> str | None:
        return cls._async_driver(value)

    @field_validator("cache_signing_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError("CACHE_SIGNING_KEY must be at least 32 characters")
        return value

    @field_validator("redis_url", "s3_endpoint_url", "s3_public_endpoint_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
