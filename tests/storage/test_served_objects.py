"""Uploaded designs cannot run script on the store's origin (issue #10, finding 6).

The declared type must be what the whole file is, and what the store serves back is an
attachment with a safe filename — checked by real HTTP GETs of presigned and public URLs
against SeaweedFS.
"""

from __future__ import annotations

import io

import httpx
import pytest

from templator.kit.ids import new_id
from templator.storage.errors import ContentTypeMismatch, UnsupportedContentType
from templator.storage.service import ObjectStore
from tests.plugins.s3 import s3_settings
from tests.support.factories import image_bytes

HTML = b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>"


@pytest.mark.parametrize(
    ("content_type", "fmt"),
    [("image/png", "PNG"), ("image/jpeg", "JPEG"), ("image/gif", "GIF"), ("image/webp", "WEBP")],
)
def test_real_images_are_accepted(object_store: ObjectStore, content_type: str, fmt: str) -> None:
    data = image_bytes(fmt, size=(16, 16), noise=True)
    stored = object_store.upload_design(new_id(), io.BytesIO(data), content_type=content_type)
    assert object_store.get_bytes(stored.key) == data


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n" + HTML, id="png-magic-then-html"),
        pytest.param(image_bytes("PNG") + HTML, id="valid-png-then-html"),
        pytest.param(image_bytes("PNG")[:-20], id="truncated-png"),
    ],
)
def test_a_png_that_is_not_only_a_png_is_refused(object_store: ObjectStore, body: bytes) -> None:
    with pytest.raises(ContentTypeMismatch, match="declared image/png but"):
        object_store.upload_design(new_id(), io.BytesIO(body), content_type="image/png")
    assert list(object_store.iter_objects()) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("image/jpeg", image_bytes("JPEG") + HTML),
        ("image/gif", b"GIF89a" + HTML),
        ("image/webp", image_bytes("WEBP") + HTML),
    ],
)
def test_other_images_with_anything_else_inside_are_refused(
    object_store: ObjectStore, content_type: str, body: bytes
) -> None:
    with pytest.raises(ContentTypeMismatch, match=f"declared {content_type} but"):
        object_store.upload_design(new_id(), io.BytesIO(body), content_type=content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"<!-- a design --><svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"<!--x-->\n<?xml version='1.0'?><svg/>",
    ],
)
def test_svg_is_refused_even_behind_a_comment_declared_as_html(
    object_store: ObjectStore, body: bytes
) -> None:
    with pytest.raises(ContentTypeMismatch, match="SVG"):
        object_store.upload_design(new_id(), io.BytesIO(body), content_type="text/html")
    with pytest.raises(UnsupportedContentType):
        object_store.upload_design(new_id(), io.BytesIO(body), content_type="image/svg+xml")


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ("text/html", b"<html>" + b"\x00\x01\x02", "NUL"),
        ("text/html", b"<html>\xff\xfe</html>", "UTF-8"),
        ("application/json", b'{"a": ', "JSON"),
    ],
)
def test_text_that_is_not_text_is_refused(
    object_store: ObjectStore, content_type: str, body: bytes, why: str
) -> None:
    with pytest.raises(ContentTypeMismatch, match=why):
        object_store.upload_design(new_id(), io.BytesIO(body), content_type=content_type)


def test_a_large_html_with_binary_past_its_first_part_is_refused_and_aborted(
    s3_server: object, object_store: ObjectStore
) -> None:
    mib = 1024 * 1024
    settings = s3_settings(
        s3_server,  # type: ignore[arg-type]
        s3_bucket=object_store.bucket,
        multipart_threshold_bytes=5 * mib,
    )
    store = ObjectStore.from_settings(settings, endpoint_url=object_store.endpoint_url)
    body = b"<html>" + b" " * (7 * mib) + b"\x00binary"
    with pytest.raises(ContentTypeMismatch, match="NUL"):
        store.upload_design(new_id(), io.BytesIO(body), content_type="text/html")
    assert list(store.iter_objects()) == []
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_a_large_image_is_checked_whole_before_it_is_stored(
    s3_server: object, object_store: ObjectStore
) -> None:
    mib = 1024 * 1024
    settings = s3_settings(
        s3_server,  # type: ignore[arg-type]
        s3_bucket=object_store.bucket,
        multipart_threshold_bytes=5 * mib,
    )
    store = ObjectStore.from_settings(settings, endpoint_url=object_store.endpoint_url)
    png = image_bytes("PNG", size=(1100, 1700), noise=True)
    assert len(png) > 5 * mib
    stored = store.upload_design(new_id(), io.BytesIO(png), content_type="image/png")
    assert store.get_bytes(stored.key) == png
    with pytest.raises(ContentTypeMismatch):
        store.upload_design(new_id(), io.BytesIO(png + HTML), content_type="image/png")
    assert [o["key"] for o in store.iter_objects()] == [stored.key]


def test_a_presigned_design_url_is_an_attachment_with_a_safe_filename(
    object_store: ObjectStore,
) -> None:
    session_id = new_id()
    stored = object_store.upload_design(session_id, io.BytesIO(HTML), content_type="text/html")

    served = httpx.get(object_store.presigned_url(stored.key))

    assert served.status_code == 200 and served.content == HTML
    disposition = served.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=")
    filename = disposition.split("filename=", 1)[1].strip('"')
    assert filename == stored.key.rsplit("/", 1)[-1]
    assert served.headers["content-type"] == "text/html"


def test_a_stored_design_is_an_attachment_even_without_a_presigned_override(
    object_store: ObjectStore,
) -> None:
    stored = object_store.upload_design(new_id(), io.BytesIO(HTML), content_type="text/html")
    assert object_store.head(stored.key)["ContentDisposition"].startswith("attachment;")
    # Plain signed GET (no response overrides), as a public URL would be served:
    url = object_store.signer.generate_presigned_url(
        "get_object", Params={"Bucket": object_store.bucket, "Key": stored.key}, ExpiresIn=60
    )
    assert httpx.get(url).headers["content-disposition"].startswith("attachment;")


def test_an_exported_modules_url_names_the_export(object_store: ObjectStore) -> None:
    stored = object_store.upload_module(new_id(), b"PK\x05\x06" + b"\x00" * 18)
    url = object_store.presigned_url(stored.key, filename='hero "banner"/../x.module.zip')
    disposition = httpx.get(url).headers["content-disposition"]
    assert disposition == 'attachment; filename="hero_banner_.._x.module.zip"'
