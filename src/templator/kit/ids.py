"""Collision-resistant string ids in the spirit of cuid2 (Prisma's `@default(cuid())`).

An id is 25 characters: a random lowercase letter (so it never starts with a digit)
followed by 24 characters of `[0-9a-z]`, drawn from the operating system's CSPRNG:
18 random bytes are base64-encoded and each of the 64 symbols folded onto the 36 allowed
ones, about 123 bits of entropy in all (cuid2 keeps about 124), with no clock or host in
it to leak. Everything runs in C (`b2a_base64`, `bytes.translate`), so bulk paths
(seeding, log ingestion) pay well under a microsecond per id. Ids are opaque: do not
sort by them.
"""

from __future__ import annotations

import binascii
import os
import re
import string

ID_LENGTH = 25
ID_PATTERN = re.compile(r"^[a-z][0-9a-z]{24}$")
_BODY_CHARS = 24
_BODY_BYTES = 18  # 18 bytes = 24 base64 symbols
_B64 = (string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/").encode()
_ALNUM = (string.digits + string.ascii_lowercase).encode()
_FOLD = bytes.maketrans(_B64, bytes(_ALNUM[i % 36] for i in range(64)))
_LETTERS = bytes(string.ascii_lowercase.encode()[i % 26] for i in range(256))


def new_ids(count: int) -> list[str]:
    """Return `count` new ids, reading and encoding the randomness once."""
    raw = os.urandom(_BODY_BYTES * count)
    body = binascii.b2a_base64(raw, newline=False).translate(_FOLD).decode("ascii")
    letters = os.urandom(count).translate(_LETTERS).decode("ascii")
    width = _BODY_CHARS
    return [
        letter + body[i : i + width]
        for letter, i in zip(letters, range(0, width * count, width), strict=True)
    ]


def new_id() -> str:
    """Return a new 25-character lowercase alphanumeric id."""
    return new_ids(1)[0]


def is_valid_id(value: str) -> bool:
    """True when `value` has the shape of an id made by `new_id`."""
    return bool(ID_PATTERN.match(value))
