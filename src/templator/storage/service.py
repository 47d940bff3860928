"""The object store over the S3 protocol: uploads, downloads, presigned URLs, deletes.

* Uploads stream: at most one part (`multipart_threshold_bytes`) is held in memory;
  larger files go up as a multipart upload that is aborted on any failure, so nothing
  half-written remains. The size limit is enforced before bytes are stored.
* The declared content type must match the file's first bytes, and the whole file must
  be of that type (`content.py`).
* Objects are stored and presigned with `Content-Disposition: attachment` and a safe
  filename, so a browser downloads a design instead of rendering it on our origin.
* Keys are built from ids and timestamps only, never from a user-supplied name.
* Presigned URLs are signed for the public endpoint browsers reach, not the internal one.

The boto3 calls are blocking; async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from templator.config import Settings
from templator.exceptions import ValidationFailed
from templator.kit.ids import is_valid_id
from templator.storage.client import make_client
from templator.storage.content import TextCheck, check_whole_file
from templator.storage.errors import ObjectNotFound, StoreUnavailable, UploadTooLarge
from templator.storage.validation import EXTENSIONS, SNIFF_BYTES, check_content

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
MODULE_DISPOSITION = 'attachment; filename="hubspot-module.zip"'
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError)


@dataclass(frozen=True, slots=True)
class PutResult:
    """What an upload stored: key, size, content type and ETag (not a `stored_objects` row)."""

    key: str
    size: int
    content_type: str
    etag: str


def _check_session_id(session_id: str) -> None:
    if not is_valid_id(session_id):
        raise ValidationFailed(f"invalid session id {session_id!r}", field="session_id")


def attachment(filename: str) -> str:
    """`attachment; filename="…"` with only safe characters in the name."""
    safe = _UNSAFE_FILENAME.sub("_", filename).strip("._") or "download"
    return f'attachment; filename="{safe[:100]}"'


def _timestamp() -> int:
    # Microseconds: two uploads of one session in the same millisecond get distinct keys.
    return time.time_ns() // 1000


def design_key(session_id: str, content_type: str) -> str:
    """A new design's key: designs/{session_id}/{timestamp}.{ext} (never a client's name)."""
    _check_session_id(session_id)
    return f"designs/{session_id}/{_timestamp()}.{EXTENSIONS[content_type]}"


def design_disposition(key: str) -> str:
    """The attachment header a design is stored and served with."""
    return attachment(f"design-{key.rsplit('/', 1)[-1]}")


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """A browser form upload: POST `fields` and then the file to `url`."""

    url: str
    fields: dict[str, str]


class ObjectStore:
    """Bucket set-up, streamed uploads, presigned URLs, deletes and listing."""

    def __init__(
        self,
        settings: Settings,
        *,
        endpoint_url: str,
        public_endpoint_url: str | None = None,
        bucket: str | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint_url = endpoint_url
        self.public_endpoint_url = public_endpoint_url or endpoint_url
        self.bucket = bucket or settings.s3_bucket
        self.client: S3Client = make_client(settings, endpoint_url=endpoint_url)
        self.signer: S3Client = make_client(settings, endpoint_url=self.public_endpoint_url)
        self.part_size = settings.multipart_threshold_bytes
        self.max_bytes = settings.upload_max_bytes

    @classmethod
    def from_settings(cls, settings: Settings, *, endpoint_url: str) -> ObjectStore:
        """The store at `endpoint_url`, signing for S3_PUBLIC_ENDPOINT_URL when set."""
        return cls(
            settings, endpoint_url=endpoint_url, public_endpoint_url=settings.s3_public_endpoint_url
        )

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except _UNREACHABLE as exc:
            raise StoreUnavailable(
                f"cannot reach the object store at {self.endpoint_url}: {exc}. Check that the "
                "S3 server runs and that S3_ENDPOINT_URL is right."
            ) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
                raise StoreUnavailable(
                    f"the object store at {self.endpoint_url} refused our credentials ({code}): "
                    "check S3_ACCESS_KEY and S3_SECRET_KEY"
                ) from exc
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(str(exc.operation_name)) from exc
            raise
        except BotoCoreError as exc:
            raise StoreUnavailable(f"object store error at {self.endpoint_url}: {exc}") from exc

    # --- bucket -----------------------------------------------------------------------

    def public_read_policy(self) -> dict[str, Any]:
        """Anonymous read on `public/*` only; everything else stays private."""
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadOfPublicPrefix",
                    "Effect": "Allow",
                    "Principal": {"AWS": ["*"]},
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{self.bucket}/public/*"],
                }
            ],
        }

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (and allowed to), then apply the public-read
        policy of `public/*` if S3_PUBLIC_PREFIX_POLICY asks for it."""

        def ensure() -> None:
            if not self._bucket_exists():
                if not self.settings.s3_create_bucket:
                    raise StoreUnavailable(
                        f"the bucket {self.bucket!r} does not exist at {self.endpoint_url}: "
                        "create it, or set S3_CREATE_BUCKET=true to let the platform do so"
                    )
                self._create_bucket()
            if self.settings.s3_public_prefix_policy:
                self._apply_public_policy()

        self._call(ensure)

    def _bucket_exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise
        return True

    def _create_bucket(self) -> None:
        # Outside us-east-1, AWS wants the region as the bucket's location constraint
        # (IllegalLocationConstraintException otherwise); us-east-1 refuses one.
        region = self.settings.s3_region
        location: dict[str, Any] = (
            {"CreateBucketConfiguration": {"LocationConstraint": region}}
            if region and region != "us-east-1"
            else {}
        )
        try:
            self.client.create_bucket(Bucket=self.bucket, **location)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def _apply_public_policy(self) -> None:
        try:
            self.client.put_bucket_policy(
                Bucket=self.bucket, Policy=json.dumps(self.public_read_policy())
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code != "AccessDenied":
                raise
            raise StoreUnavailable(
                f"the object store refused the public-read policy on {self.bucket}/public/* "
                f"({code}): S3 Block Public Access is probably on. Presigned URLs need no "
                "policy: set S3_PUBLIC_PREFIX_POLICY=false, or allow public bucket policies"
            ) from exc

    def _encryption(self) -> dict[str, str]:
        """The server-side encryption arguments of every write (S3_SSE)."""
        if self.settings.s3_sse == "none":
            return {}
        args: dict[str, str] = {"ServerSideEncryption": self.settings.s3_sse}
        if self.settings.s3_sse == "aws:kms" and self.settings.s3_sse_kms_key_id:
            args["SSEKMSKeyId"] = self.settings.s3_sse_kms_key_id
        return args

    # --- uploads ----------------------------------------------------------------------

    def upload_design(
        self,
        session_id: str,
        stream: IO[bytes],
        *,
        content_type: str,
        declared_size: int | None = None,
    ) -> PutResult:
        """Store a design file under designs/{session_id}/{timestamp}.{ext}."""
        _check_session_id(session_id)
        if declared_size is not None and declared_size > self.max_bytes:
            raise UploadTooLarge(self.max_bytes)
        first = self._read(stream, self.part_size + 1)
        if len(first) > self.max_bytes:
            raise UploadTooLarge(self.max_bytes)
        kind = check_content(content_type, first[:SNIFF_BYTES])
        check = TextCheck(kind) if kind == "text/html" and len(first) > self.part_size else None
        spool = None
        if check is None:  # else HTML is checked part by part as it streams
            first, spool = self._whole_file_checked(kind, first, stream)
        key = design_key(session_id, kind)
        extra = {
            "ContentType": kind,
            "ContentDisposition": design_disposition(key),
            "Metadata": {"session-id": session_id},
        }
        try:
            return self._upload(
                key, first, spool or stream, extra=extra, content_type=kind, check=check
            )
        finally:
            if spool is not None:
                spool.close()

    def _whole_file_checked(
        self, kind: str, first: bytes, stream: IO[bytes]
    ) -> tuple[bytes, IO[bytes] | None]:
        """Check the whole file is `kind` before any byte is stored: a file of one part as
        it is; a larger image or JSON spooled (memory up to one part, then a temporary
        file) and read back from there. Returns its first part and the spool (or None)."""
        if len(first) <= self.part_size:
            check_whole_file(kind, io.BytesIO(first))
            return first, None
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self.part_size)  # noqa: SIM115
        try:
            spool.write(first)
            total = len(first)
            while chunk := stream.read(self.part_size):
                total += len(chunk)
                if total > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
                spool.write(chunk)
            check_whole_file(kind, spool)
            return self._read(spool, self.part_size + 1), spool
        except BaseException:
            spool.close()
            raise

    def upload_module(self, session_id: str, data: bytes) -> PutResult:
        """Store a module zip under modules/{session_id}/module-{timestamp}.zip."""
        _check_session_id(session_id)
        key = f"modules/{session_id}/module-{_timestamp()}.zip"
        extra = {
            "ContentType": "application/zip",
            "ContentDisposition": MODULE_DISPOSITION,
            "Metadata": {"session-id": session_id},
        }
        return self._upload(key, data, None, extra=extra, content_type="application/zip")

    @staticmethod
    def _read(stream: IO[bytes], size: int) -> bytes:
        chunks, remaining = [], size
        while remaining > 0:
            chunk = stream.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _upload(
        self,
        key: str,
        first: bytes,
        stream: IO[bytes] | None,
        *,
        extra: dict[str, Any],
        content_type: str,
        check: TextCheck | None = None,
    ) -> PutResult:
        extra = {**extra, **self._encryption()}
        if stream is None or len(first) <= self.part_size:
            response = self._call(
                lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=first, **extra)
            )
            return PutResult(key, len(first), content_type, response["ETag"].strip('"'))
        return self._multipart(
            key, first, stream, extra=extra, content_type=content_type, check=check
        )

    def _multipart(
        self,
        key: str,
        first: bytes,
        stream: IO[bytes],
        *,
        extra: dict[str, Any],
        content_type: str,
        check: TextCheck | None,
    ) -> PutResult:
        """A multipart upload; with `check`, each part is checked before it is sent and
        the upload completes only when the whole file passed (else it is aborted)."""
        upload = self._call(
            lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            # `first` holds one part plus one byte: send the part, carry the byte over.
            pending = first
            while pending:
                body, pending = pending[: self.part_size], pending[self.part_size :]
                more = self._read(stream, self.part_size - len(pending))
                pending += more
                total += len(body)
                if total > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
                if check is not None:
                    check.feed(body)
                number = len(parts) + 1
                response = self._call(
                    lambda b=body, n=number: self.client.upload_part(  # type: ignore[misc]
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=b
                    )
                )
                parts.append({"ETag": response["ETag"], "PartNumber": number})
            if check is not None:
                check.close()
            result = self._call(
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                )
            )
        except BaseException:
            # If the store is failing, its own multipart expiry cleans up what is left.
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return PutResult(key, total, content_type, str(result.get("ETag", "")).strip('"'))

    # --- reads, URLs, deletes -----------------------------------------------------------

    def presigned_url(
        self, key: str, *, expires_in: int | None = None, filename: str | None = None
    ) -> str:
        """A GET URL for `key`, signed for the public endpoint; 1 s to 7 days. Its
        response is an attachment (`filename`, default the key's last part), never shown
        inline."""
        seconds = self.settings.presign_default_expiry if expires_in is None else expires_in
        if not 1 <= seconds <= MAX_PRESIGN_SECONDS:
            raise ValidationFailed(
                f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds (7 days)",
                field="expires_in",
            )
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentDisposition": attachment(filename or key.rsplit("/", 1)[-1]),
        }
        return self.signer.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def presigned_post(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> PresignedPost:
        """A POST policy for one design, signed for the public endpoint: the store itself
        refuses another key, another Content-Type or Content-Disposition, and a body
        outside 1..`max_bytes` (content-length-range)."""
        fields = {"Content-Type": content_type, "Content-Disposition": design_disposition(key)}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            {"Content-Disposition": fields["Content-Disposition"]},
            ["content-length-range", 1, max_bytes],
        ]
        post = self.signer.generate_presigned_post(
            self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )
        return PresignedPost(post["url"], {k: str(v) for k, v in post["fields"].items()})

    def read_range(self, key: str, length: int) -> bytes:
        """The object's first `length` bytes (a ranged GET)."""
        try:
            response = self._call(
                lambda: self.client.get_object(
                    Bucket=self.bucket, Key=key, Range=f"bytes=0-{length - 1}"
                )
            )
        except ObjectNotFound:
            raise ObjectNotFound(key) from None
        return response["Body"].read()

    def download(self, key: str, into: IO[bytes]) -> None:
        """Stream the whole object into `into` (a spool), part by part."""
        try:
            response = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        except ObjectNotFound:
            raise ObjectNotFound(key) from None
        body = response["Body"]
        while chunk := self._call(lambda: body.read(self.part_size)):
            into.write(chunk)

    def head(self, key: str) -> dict[str, Any]:
        """The object's headers; ObjectNotFound when it does not exist."""
        try:
            return dict(self._call(lambda: self.client.head_object(Bucket=self.bucket, Key=key)))
        except ObjectNotFound:
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""
        try:
            self.head(key)
        except ObjectNotFound:
            return False
        return True

    def get_bytes(self, key: str) -> bytes:
        """The whole object (small objects only: module zips)."""
        try:
            response = self._call(lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        except ObjectNotFound:
            raise ObjectNotFound(key) from None
        return response["Body"].read()

    def delete(self, key: str) -> None:
        """Delete one object (no error when it is already gone)."""
        self._call(lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def iter_objects(self, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every object under `prefix`, with key, size and last-modified time."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=prefix)))
        for page in pages:
            for item in page.get("Contents", []):
                yield {
                    "key": item["Key"],
                    "size": item["Size"],
                    "last_modified": item["LastModified"],
                }

    def delete_many(self, keys: list[str]) -> int:
        """Delete keys in batches of 1,000; return how many were asked for."""
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self._call(
                lambda b=batch: self.client.delete_objects(  # type: ignore[misc]
                    Bucket=self.bucket, Delete={"Objects": b, "Quiet": True}
                )
            )
        return len(keys)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (e.g. designs/{session_id}/)."""
        if not prefix.endswith("/"):
            raise ValidationFailed("a prefix to delete must end with '/'", field="prefix")
        return self.delete_many([o["key"] for o in self.iter_objects(prefix)])

    def probe(self) -> dict[str, Any]:
        """Health probe: the bucket answers."""
        self._call(lambda: self.client.head_bucket(Bucket=self.bucket))
        return {"bucket": self.bucket, "public_endpoint": self.public_endpoint_url}
