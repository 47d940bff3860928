"""Object store errors."""

from __future__ import annotations

from typing import TypeVar

from templator.exceptions import NotFound, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType

S = TypeVar("S")


class UploadTooLarge(PayloadTooLarge):
    """An upload is over the size limit."""

    code = "upload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"upload exceeds the limit of {limit:,} bytes ({limit / 1_048_576:.0f} MiB)",
            field="file",
        )


class UnsupportedContentType(UnsupportedMediaType):
    """A content type we do not store."""

    code = "unsupported_content_type"


class ContentTypeMismatch(UnsupportedMediaType):
    """The bytes are not what the declared content type says."""

    code = "content_type_mismatch"


class ObjectNotFound(NotFound):
    """No object under that key."""

    code = "object_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"object {key!r} does not exist", field="key")


class ObjectMissing(NotFound):
    """A direct upload to confirm is not in the store (never sent, or under another key)."""

    code = "object_missing"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"no uploaded object under {key!r}: send the file with the presigned POST "
            "first, then confirm the key it was given",
            field="key",
        )


class StoreUnavailable(ServiceUnavailable):
    """The S3 endpoint cannot be reached or refused our credentials."""

    code = "storage_unavailable"
    store = "object_store"


def require_store(store: S | None) -> S:
    """`store`, or StoreUnavailable saying how to configure one when there is none."""
    if store is None:
        raise StoreUnavailable(
            "no object store is configured: set S3_ENDPOINT_URL (or run `templator up`)"
        )
    return store
