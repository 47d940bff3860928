"""AWS S3 and friends: regions, least-privilege credentials, the optional public policy,
addressing style, the default credential chain and server-side encryption.

AWS-only behaviour (location constraints, SSE-KMS) runs against moto's server mode over
HTTP; credentials and permissions against a real SeaweedFS with a second, bucket-limited
user.
"""

from __future__ import annotations

import io
import shutil
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from templator.config import PROJECT_ROOT, Settings
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.kit.ids import new_id
from templator.storage.errors import StoreUnavailable
from templator.storage.service import ObjectStore
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY, s3_settings
from tests.support.factories import image_bytes

LIMITED_KEY, LIMITED_SECRET = "limited-user", "limited-user-secret"
LIMITED_BUCKET = "limited-bucket"
EMPTY_ZIP = b"PK\x05\x06" + b"\x00" * 18
PNG = image_bytes("PNG")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def limited_s3() -> Iterator[SeaweedFS]:
    """SeaweedFS with our admin user and a user that may only read, write and list one
    bucket, as a least-privilege deployment would give the platform."""
    folder = PROJECT_ROOT / "var" / f"test-s3-limited-{uuid.uuid4().hex[:8]}"
    limited = {
        "name": "limited",
        "credentials": [{"accessKey": LIMITED_KEY, "secretKey": LIMITED_SECRET}],
        "actions": [f"{a}:{LIMITED_BUCKET}" for a in ("Read", "Write", "List", "Tagging")],
    }
    server = SeaweedFS(
        folder, access_key=ACCESS_KEY, secret_key=SECRET_KEY, extra_identities=[limited]
    )
    server.start()
    admin = ObjectStore.from_settings(
        s3_settings(server, s3_bucket=LIMITED_BUCKET), endpoint_url=server.endpoint_url
    )
    admin.ensure_bucket()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _moto_store(endpoint: str, **overrides: object) -> ObjectStore:
    values: dict[str, object] = {
        "s3_endpoint_url": endpoint,
        "s3_access_key": "moto",
        "s3_secret_key": "moto-secret",
        "s3_bucket": f"moto-{uuid.uuid4().hex[:12]}",
        **overrides,
    }
    settings = Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]
    return ObjectStore.from_settings(settings, endpoint_url=endpoint)


def test_bucket_is_created_in_its_region_outside_us_east_1(moto_endpoint: str) -> None:
    store = _moto_store(moto_endpoint, s3_region="eu-west-1")
    store.ensure_bucket()
    store.ensure_bucket()  # again: it exists now
    location = store.client.get_bucket_location(Bucket=store.bucket)
    assert location["LocationConstraint"] == "eu-west-1"


def test_us_east_1_bucket_has_no_location_constraint(moto_endpoint: str) -> None:
    store = _moto_store(moto_endpoint, s3_region="us-east-1")
    store.ensure_bucket()
    assert store.client.get_bucket_location(Bucket=store.bucket)["LocationConstraint"] is None


@pytest.mark.parametrize(
    ("sse", "key_id"), [("AES256", None), ("aws:kms", "arn:aws:kms:eu-west-1:1:key/k-1")]
)
def test_server_side_encryption_applies_to_every_upload(
    moto_endpoint: str, sse: str, key_id: str | None
) -> None:
    store = _moto_store(moto_endpoint, s3_sse=sse, s3_sse_kms_key_id=key_id)
    store.ensure_bucket()
    design = store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    module = store.upload_module(new_id(), EMPTY_ZIP)
    for key in (design.key, module.key):
        head = store.head(key)
        assert head["ServerSideEncryption"] == sse
        assert head.get("SSEKMSKeyId") == key_id


def test_no_encryption_arguments_by_default(moto_endpoint: str) -> None:
    store = _moto_store(moto_endpoint)
    store.ensure_bucket()
    stored = store.upload_module(new_id(), EMPTY_ZIP)
    assert "SSEKMSKeyId" not in store.head(stored.key)


def test_virtual_hosted_addressing_puts_the_bucket_in_the_host(moto_endpoint: str) -> None:
    virtual = _moto_store(
        moto_endpoint.replace("127.0.0.1", "localhost"), s3_addressing_style="virtual"
    )
    path = _moto_store(moto_endpoint.replace("127.0.0.1", "localhost"))
    virtual_host = urlsplit(virtual.presigned_url("designs/x.png")).hostname
    assert virtual_host == f"{virtual.bucket}.localhost"
    assert urlsplit(path.presigned_url("designs/x.png")).path.startswith(f"/{path.bucket}/")


def test_public_policy_is_off_by_default(limited_s3: SeaweedFS) -> None:
    store = ObjectStore.from_settings(s3_settings(limited_s3), endpoint_url=limited_s3.endpoint_url)
    store.ensure_bucket()
    with pytest.raises(ClientError) as raised:
        store.client.get_bucket_policy(Bucket=store.bucket)
    assert raised.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_public_policy_when_asked_for(limited_s3: SeaweedFS) -> None:
    conf = s3_settings(limited_s3, s3_public_prefix_policy=True)
    store = ObjectStore.from_settings(conf, endpoint_url=limited_s3.endpoint_url)
    store.ensure_bucket()
    assert "public/*" in store.client.get_bucket_policy(Bucket=store.bucket)["Policy"]


def _limited(server: SeaweedFS, **overrides: object) -> ObjectStore:
    values: dict[str, object] = {
        "s3_access_key": LIMITED_KEY,
        "s3_secret_key": LIMITED_SECRET,
        "s3_bucket": LIMITED_BUCKET,
        **overrides,
    }
    return ObjectStore.from_settings(
        s3_settings(server, **values), endpoint_url=server.endpoint_url
    )


def test_credentials_limited_to_the_bucket_work_at_start_up(limited_s3: SeaweedFS) -> None:
    store = _limited(limited_s3, s3_create_bucket=False)
    store.ensure_bucket()  # no CreateBucket and no PutBucketPolicy right needed
    stored = store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    assert store.get_bytes(stored.key) == PNG


def test_a_refused_public_policy_is_not_called_bad_credentials(limited_s3: SeaweedFS) -> None:
    store = _limited(limited_s3, s3_public_prefix_policy=True)
    with pytest.raises(StoreUnavailable) as raised:
        store.ensure_bucket()
    assert "S3_PUBLIC_PREFIX_POLICY=false" in raised.value.message
    assert "S3_ACCESS_KEY" not in raised.value.message


def test_bucket_must_exist_mode_names_the_bucket(limited_s3: SeaweedFS) -> None:
    store = ObjectStore.from_settings(
        s3_settings(limited_s3, s3_create_bucket=False), endpoint_url=limited_s3.endpoint_url
    )
    with pytest.raises(StoreUnavailable) as raised:
        store.ensure_bucket()
    assert store.bucket in raised.value.message and "S3_CREATE_BUCKET" in raised.value.message
    assert not store._bucket_exists()


def test_empty_access_key_uses_the_default_credential_chain(
    limited_s3: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LIMITED_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LIMITED_SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    store = _limited(limited_s3, s3_access_key="", s3_secret_key="")
    stored = store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    assert store.get_bytes(stored.key) == PNG

    # boto3's default session keeps the credentials it resolved: start a new one.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    refused = _limited(limited_s3, s3_access_key="", s3_secret_key="")
    with pytest.raises(StoreUnavailable):
        refused.get_bytes(stored.key)
