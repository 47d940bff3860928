"""The object store against a real S3 server (SeaweedFS) over HTTP."""

from __future__ import annotations

import io
import time

import httpx
import pytest

from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.exceptions import ValidationFailed
from templator.kit.ids import new_id
from templator.storage.errors import (
    ContentTypeMismatch,
    StoreUnavailable,
    UnsupportedContentType,
    UploadTooLarge,
)
from templator.storage.service import ObjectStore
from tests.plugins.s3 import s3_settings
from tests.support.factories import image_bytes

PNG = image_bytes("PNG")
HTML = b"<!DOCTYPE html><html><body><h1>Hero</h1></body></html>"


class Chunks(io.RawIOBase):
    """A readable stream that makes `size` bytes on the fly (never all in memory)."""

    def __init__(self, head: bytes, size: int, fill: bytes = b"\x00") -> None:
        self.head, self.size, self.pos, self.fill = head, size, 0, fill

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.size - self.pos)
        if n <= 0:
            return 0
        data = bytearray(self.fill * n)
        head_part = self.head[self.pos : self.pos + n]
        data[: len(head_part)] = head_part
        buffer[:n] = data
        self.pos += n
        return n


def test_bucket_policy_allows_anonymous_reads_of_public_only(s3_server: SeaweedFS) -> None:
    conf = s3_settings(s3_server, s3_public_prefix_policy=True)
    store = ObjectStore.from_settings(conf, endpoint_url=s3_server.endpoint_url)
    store.ensure_bucket()
    store.client.put_object(Bucket=store.bucket, Key="public/logo.txt", Body=b"hi")
    store.client.put_object(Bucket=store.bucket, Key="designs/x/1.txt", Body=b"no")
    base = f"{store.endpoint_url}/{store.bucket}"
    assert httpx.get(f"{base}/public/logo.txt").content == b"hi"
    assert httpx.get(f"{base}/designs/x/1.txt").status_code == 403


def test_without_the_policy_nothing_is_anonymously_readable(object_store: ObjectStore) -> None:
    object_store.client.put_object(Bucket=object_store.bucket, Key="public/logo.txt", Body=b"hi")
    base = f"{object_store.endpoint_url}/{object_store.bucket}"
    assert httpx.get(f"{base}/public/logo.txt").status_code == 403
    assert httpx.get(object_store.presigned_url("public/logo.txt")).content == b"hi"


def test_ensure_bucket_is_idempotent(object_store: ObjectStore) -> None:
    object_store.ensure_bucket()
    object_store.ensure_bucket()
    assert object_store.probe()["bucket"] == object_store.bucket


def test_design_upload_key_type_and_session_metadata(object_store: ObjectStore) -> None:
    session_id = new_id()
    stored = object_store.upload_design(
        session_id, io.BytesIO(HTML), content_type="text/html; charset=utf-8"
    )
    assert stored.key.startswith(f"designs/{session_id}/") and stored.key.endswith(".html")
    head = object_store.head(stored.key)
    assert head["ContentType"] == "text/html"
    assert head["Metadata"]["session-id"] == session_id


def test_module_upload_is_a_zip_attachment(object_store: ObjectStore) -> None:
    session_id = new_id()
    stored = object_store.upload_module(session_id, b"PK\x05\x06" + b"\x00" * 18)
    assert stored.key.startswith(f"modules/{session_id}/module-") and stored.key.endswith(".zip")
    head = object_store.head(stored.key)
    assert head["ContentType"] == "application/zip"
    assert head["ContentDisposition"] == 'attachment; filename="hubspot-module.zip"'


def test_presigned_url_gives_the_exact_bytes(object_store: ObjectStore) -> None:
    data = image_bytes("PNG", size=(48, 48), noise=True)
    stored = object_store.upload_design(new_id(), io.BytesIO(data), content_type="image/png")
    response = httpx.get(object_store.presigned_url(stored.key))
    assert response.status_code == 200
    assert response.content == data


def test_expired_presigned_url_is_refused(object_store: ObjectStore) -> None:
    stored = object_store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    url = object_store.presigned_url(stored.key, expires_in=1)
    time.sleep(2.1)
    assert httpx.get(url).status_code == 403


@pytest.mark.parametrize("seconds", [0, 7 * 24 * 3600 + 1])
def test_presign_expiry_outside_limits_is_refused(object_store: ObjectStore, seconds: int) -> None:
    with pytest.raises(ValidationFailed, match="7 days"):
        object_store.presigned_url("designs/x/1.png", expires_in=seconds)


def test_urls_are_signed_for_the_public_endpoint(
    s3_server: SeaweedFS, object_store: ObjectStore
) -> None:
    public = s3_server.endpoint_url.replace("127.0.0.1", "localhost")
    settings = s3_settings(s3_server, s3_bucket=object_store.bucket, s3_public_endpoint_url=public)
    store = ObjectStore.from_settings(settings, endpoint_url=s3_server.endpoint_url)
    stored = store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    url = store.presigned_url(stored.key)
    assert url.startswith(public)
    assert httpx.get(url).content == PNG


def test_oversize_declared_upload_is_refused_before_anything_is_stored(
    s3_server: SeaweedFS, object_store: ObjectStore
) -> None:
    settings = s3_settings(s3_server, s3_bucket=object_store.bucket, upload_max_bytes=1000)
    store = ObjectStore.from_settings(settings, endpoint_url=s3_server.endpoint_url)
    with pytest.raises(UploadTooLarge, match="1,000 bytes"):
        store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png", declared_size=5000)
    with pytest.raises(UploadTooLarge):
        store.upload_design(new_id(), io.BytesIO(PNG + b"\x00" * 2000), content_type="image/png")
    assert list(store.iter_objects()) == []


def test_large_upload_streams_as_multipart_and_oversize_stream_is_aborted(
    s3_server: SeaweedFS, object_store: ObjectStore
) -> None:
    mib = 1024 * 1024
    settings = s3_settings(
        s3_server,
        s3_bucket=object_store.bucket,
        multipart_threshold_bytes=5 * mib,
        upload_max_bytes=14 * mib,
    )
    store = ObjectStore.from_settings(settings, endpoint_url=s3_server.endpoint_url)
    stored = store.upload_design(
        new_id(), Chunks(HTML, 12 * mib, fill=b" "), content_type="text/html"
    )
    assert stored.size == 12 * mib
    assert store.head(stored.key)["ContentLength"] == 12 * mib
    with pytest.raises(UploadTooLarge):
        store.upload_design(new_id(), Chunks(HTML, 20 * mib, fill=b" "), content_type="text/html")
    assert [o["key"] for o in store.iter_objects()] == [stored.key]
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert uploads == []


def test_mismatched_and_unknown_types_are_refused(object_store: ObjectStore) -> None:
    with pytest.raises(
        ContentTypeMismatch, match="declared image/png but its first bytes look like text/html"
    ):
        object_store.upload_design(new_id(), io.BytesIO(HTML), content_type="image/png")
    with pytest.raises(UnsupportedContentType, match="application/pdf"):
        object_store.upload_design(
            new_id(), io.BytesIO(b"%PDF-1.7"), content_type="application/pdf"
        )
    assert list(object_store.iter_objects()) == []


def test_keys_never_come_from_user_input(object_store: ObjectStore) -> None:
    with pytest.raises(ValidationFailed, match="invalid session id"):
        object_store.upload_design("../../etc", io.BytesIO(PNG), content_type="image/png")


def test_unreachable_store_fails_fast_naming_the_endpoint(s3_server: SeaweedFS) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = ObjectStore.from_settings(s3_settings(s3_server), endpoint_url=endpoint)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=endpoint):
        store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    assert time.monotonic() - started < 10


def test_delete_prefix_removes_a_sessions_objects(object_store: ObjectStore) -> None:
    session_id = new_id()
    for _ in range(3):
        object_store.upload_design(session_id, io.BytesIO(PNG), content_type="image/png")
    kept = object_store.upload_design(new_id(), io.BytesIO(PNG), content_type="image/png")
    assert object_store.delete_prefix(f"designs/{session_id}/") == 3
    assert [o["key"] for o in object_store.iter_objects()] == [kept.key]
