"""boto3 S3 clients: one for the service's own calls, one that signs for the public host."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig

from templator.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def credentials(settings: Settings) -> dict[str, str]:
    """Static keys when S3_ACCESS_KEY is set; none (boto3's default credential chain:
    environment, shared config, instance profile, IRSA web identity) when it is empty."""
    return settings.s3_static_keys()


def make_client(settings: Settings, *, endpoint_url: str, retries: int = 2) -> S3Client:
    """A SigV4 client with the settings' addressing style, credentials and timeouts."""
    client: S3Client = boto3.client(  # type: ignore[call-overload]
        "s3",
        endpoint_url=endpoint_url,
        region_name=settings.s3_region,
        **credentials(settings),
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": settings.s3_addressing_style},
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"max_attempts": retries, "mode": "standard"},
            max_pool_connections=20,
        ),
    )
    return client
