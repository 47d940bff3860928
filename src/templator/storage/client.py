"""boto3 S3 clients: one for the service's own calls, one that signs for the public host."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig

from templator.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def make_client(settings: Settings, *, endpoint_url: str, retries: int = 2) -> S3Client:
    """A path-style, SigV4 client with the settings' timeouts."""
    client: S3Client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
        region_name=settings.s3_region,
        config=BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            connect_timeout=settings.s3_connect_timeout,
            read_timeout=settings.s3_read_timeout,
            retries={"max_attempts": retries, "mode": "standard"},
            max_pool_connections=20,
        ),
    )
    return client
