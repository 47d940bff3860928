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

    @field_validator(
        "redis_url", "s3_endpoint_url", "s3_public_endpoint_url", "backup_s3_endpoint_url"
    )
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
