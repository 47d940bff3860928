"""Direct uploads: a browser sends a design straight to the store with a presigned POST,
and the API checks the stored object before it records it.

The POST policy already makes the store refuse another key, type or disposition and a
body outside 1..max bytes (SeaweedFS enforces content-length-range and the field
conditions: tests/api/test_designs.py). The check here does not trust
that alone — another S3 server might not — and applies the streamed upload's rules to
what was stored: its size (HEAD), its declared type against its first bytes (a ranged
GET), and the whole file against that type (images decoded by Pillow with its
decompression-bomb limit, text as UTF-8 without NUL). An object that fails is deleted.
"""

from __future__ import annotations

import contextlib
import tempfile

from templator.storage.content import check_whole_file
from templator.storage.errors import (
    ContentTypeMismatch,
    ObjectMissing,
    ObjectNotFound,
    UnsupportedContentType,
    UploadTooLarge,
)
from templator.storage.service import ObjectStore, PutResult
from templator.storage.validation import SNIFF_BYTES, check_content, normalise_content_type


def check_stored_design(store: ObjectStore, key: str, *, max_bytes: int) -> PutResult:
    """The stored object under `key` as a design, or the reason it is not one (and then
    the object is deleted). Blocking: async callers use `asyncio.to_thread`."""
    try:
        head = store.head(key)
    except ObjectNotFound:
        raise ObjectMissing(key) from None
    size = int(head.get("ContentLength", 0))
    try:
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        content_type = normalise_content_type(str(head.get("ContentType", "")))
        check_content(content_type, store.read_range(key, SNIFF_BYTES))
        with tempfile.SpooledTemporaryFile(max_size=store.part_size) as spool:
            store.download(key, spool)
            spool.seek(0)
            check_whole_file(content_type, spool)
    except (UploadTooLarge, UnsupportedContentType, ContentTypeMismatch):
        with contextlib.suppress(Exception):
            store.delete(key)
        raise
    return PutResult(key, size, content_type, str(head.get("ETag", "")).strip('"'))
