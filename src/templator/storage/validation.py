"""What we accept: the content types of designs (EXTENSIONS), checked against the file's
first bytes."""

from __future__ import annotations

from templator.storage.errors import ContentTypeMismatch, UnsupportedContentType

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "text/html": "html",
    "application/json": "json",
}
SNIFF_BYTES = 512
_HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<div",
    b"<section",
    b"<!--",
    b"<meta",
    b"<title",
    b"<script",
    b"<style",
    b"<p",
    b"<h1",
    b"<table",
    b"<a ",
    b"<br",
    b"<iframe",
    b"<font",
    b"<b>",
    b"<header",
    b"<main",
    b"<nav",
    b"<footer",
    b"<span",
    b"<img",
)
_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")


def _text_start(head: bytes) -> bytes:
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    return head.lstrip(b" \t\r\n\x0c")


def sniff(head: bytes) -> str | None:
    """The content type the first bytes show (WHATWG-style signatures), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    text = _text_start(head)
    lowered = text[:16].lower()
    if any(lowered.startswith(tag) for tag in _HTML_STARTS):
        return "text/html"
    if text[:1] in (b"{", b"["):
        return "application/json"
    return None


def normalise_content_type(declared: str) -> str:
    """`text/html; charset=utf-8` → `text/html`; refuse what we do not store."""
    base = declared.split(";", 1)[0].strip().lower()
    if base not in EXTENSIONS:
        allowed = ", ".join(sorted(EXTENSIONS))
        raise UnsupportedContentType(
            f"content type {declared!r} is not accepted; use one of: {allowed}",
            field="content_type",
        )
    return base


def check_content(declared: str, head: bytes) -> str:
    """The normalised content type, after checking the bytes match it."""
    content_type = normalise_content_type(declared)
    found = sniff(head[:SNIFF_BYTES])
    if found != content_type:
        shown = found or "no known type"
        raise ContentTypeMismatch(
            f"the file is declared {content_type} but its first bytes look like {shown}",
            field="content_type",
        )
    return content_type
