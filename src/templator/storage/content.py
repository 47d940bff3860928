"""The whole file must be what its declared type says (the first bytes are `validation.py`'s).

Images are parsed by Pillow (PNG: every chunk and its CRC up to IEND) and must end where
their format ends — no bytes after the PNG IEND chunk, the JPEG end-of-image marker, the
GIF trailer, or the WebP RIFF size — so a file cannot be an image and something else at
once. HTML and JSON must be text: UTF-8 (an optional BOM), no NUL bytes; JSON must parse.
SVG is not accepted at all (it is a document that can run script).
"""

from __future__ import annotations

import codecs
import contextlib
import re
import struct
import warnings
from typing import IO

import orjson
from PIL import Image, UnidentifiedImageError

from templator.storage.errors import ContentTypeMismatch

_PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# An HTML design opening with comments then an SVG/XML root is an SVG document in
# disguise (the comment-prefixed SVG of issue #10): refused like SVG itself.
_LEADING_COMMENTS = re.compile(rb"\A(?:\s|<!--.*?-->)*", re.DOTALL)
_CHUNK = 1024 * 1024
_TAIL = 16


def _mismatch(content_type: str, why: str) -> ContentTypeMismatch:
    return ContentTypeMismatch(
        f"the file is declared {content_type} but {why}; upload the file itself, "
        "unchanged, with its own type",
        field="content_type",
    )


def _size_and_tail(stream: IO[bytes]) -> tuple[int, bytes]:
    size = stream.seek(0, 2)
    stream.seek(max(0, size - _TAIL))
    tail = stream.read(_TAIL)
    stream.seek(0)
    return size, tail


# Pillow names the stream it read in some messages (`<_io.BytesIO object at 0x…>`): an
# address of this process, and no help to the client.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _problem_of(exc: BaseException) -> str:
    """What Pillow found wrong, without the stream's repr."""
    text = _OBJECT_REPR.sub("", str(exc)).replace("  ", " ").strip(" :")
    return text or type(exc).__name__


def _check_image(content_type: str, stream: IO[bytes]) -> None:
    fmt = _PILLOW_FORMATS[content_type]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream, formats=[fmt]) as image:
                image.verify()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        # The warning past MAX_IMAGE_PIXELS, the error past twice that: both are a
        # picture far larger than a design, whatever its file size.
        raise _mismatch(
            content_type,
            f"its dimensions are too large to decode safely ({_problem_of(exc)})",
        ) from exc
    except UnidentifiedImageError as exc:
        raise _mismatch(content_type, f"its bytes are not a readable {fmt} image") from exc
    except Exception as exc:  # a decoder's error of any kind is a bad file, never a 500
        raise _mismatch(
            content_type, f"it is not a valid {fmt} image ({_problem_of(exc)})"
        ) from exc
    size, tail = _size_and_tail(stream)
    if content_type == "image/png":
        ends = tail.endswith(_IEND)
    elif content_type == "image/jpeg":
        ends = tail.endswith(b"\xff\xd9")
    elif content_type == "image/gif":
        ends = tail.endswith(b";")
    else:  # WebP: the RIFF header states the size of everything after its first 8 bytes
        stream.seek(4)
        (riff_size,) = struct.unpack("<I", stream.read(4))
        stream.seek(0)
        ends = riff_size + 8 == size
    if not ends:
        raise _mismatch(content_type, "it has bytes after the end of the image")


class TextCheck:
    """HTML or JSON fed part by part (a multipart upload checks as it streams): UTF-8
    (optional BOM), no NUL bytes; an HTML design must not be an SVG/XML document."""

    def __init__(self, content_type: str) -> None:
        self.content_type = content_type
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._started = False
        self._offset = 0

    def feed(self, chunk: bytes) -> None:
        """Check the next bytes of the file."""
        if not self._started:
            self._started = True
            if self.content_type == "text/html":
                head = chunk[: 64 * 1024].removeprefix(codecs.BOM_UTF8)
                comments = _LEADING_COMMENTS.match(head)
                root = head[comments.end() if comments else 0 :][:5].lower()
                if root.startswith((b"<svg", b"<?xml")):
                    raise _mismatch(
                        self.content_type, "it is an SVG/XML document (SVG is not accepted)"
                    )
        if b"\x00" in chunk:
            raise _mismatch(self.content_type, "it contains NUL bytes (binary data)")
        try:
            self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise _mismatch(
                self.content_type, f"it is not UTF-8 text (byte {self._offset + exc.start})"
            ) from exc
        self._offset += len(chunk)

    def close(self) -> None:
        """The file has ended: it must not end inside a UTF-8 sequence."""
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise _mismatch(self.content_type, "it ends inside a UTF-8 character") from exc


def check_whole_file(content_type: str, stream: IO[bytes]) -> None:
    """Refuse (415) a seekable file whose whole content is not `content_type`; leaves the
    stream at its start."""
    try:
        if content_type in _PILLOW_FORMATS:
            _check_image(content_type, stream)
            return
        text = TextCheck(content_type)
        kept: list[bytes] = []
        while chunk := stream.read(_CHUNK):
            text.feed(chunk)
            if content_type == "application/json":
                kept.append(chunk)
        text.close()
        if content_type == "application/json":
            try:
                orjson.loads(b"".join(kept).removeprefix(codecs.BOM_UTF8))
            except orjson.JSONDecodeError as exc:
                raise _mismatch(content_type, f"it is not valid JSON ({exc})") from exc
    finally:
        with contextlib.suppress(OSError, ValueError):
            stream.seek(0)
