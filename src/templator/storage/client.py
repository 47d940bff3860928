"""The one boto3 S3 client factory: the object store's clients (its own calls, and one that
signs for the public host) and backup's (its repository and the store it copies)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import boto3
from botocore.config import Config as BotoConfig

from templator.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def credentials(settings: Settings) -> dict[str, str]:
    """Static keys when S3_ACCESS_KEY is set; none (boto3's default credential chain:
    environment, shared config, instance profile, IRSA web identity) when it is empty."""
    return settings.s3_static_keys()


def make_client(
    settings: Settings,
    *,
    endpoint_url: str | None,
    retries: int = 2,
    pool_size: int = 20,
    addressing_style: Literal["path", "virtual", "auto"] | None = None,
    region: str | None = None,
    keys: tuple[str, str] | None = None,
) -> S3Client:
    """A SigV4 client with the settings' timeouts and, unless given, their addressing
    style, region and credentials (`keys`: an access key and secret of its own)."""
    auth = (
        {"aws_access_key_id": keys[0], "aws_secret_access_key": keys[1]}
        if keys is not None
        else credentials(settings)
    )
    client: S3Client = boto3.client(  # type: ignore[call-overload]
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or settings.s3_region,
        **auth,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style or settings.s3_addressing_style},
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"max_attempts": retries, "mode": "standard"},
            max_pool_connections=pool_size,
        ),
    )
    return client
