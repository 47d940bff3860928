"""Collision-resistant string ids in the spirit of cuid2 (the plan's `@default(cuid())`).

An id is 25 characters: a random lowercase letter (so it never starts with a digit) and
24 base-36 characters drawn from the operating system's CSPRNG (about 124 bits of
entropy, more than cuid2's hash keeps). Ids are opaque: do not sort by them. Bulk paths
(seeding, log ingestion) call `new_ids(n)`, which reads the random bytes in one go.
"""

from __future__ import annotations

import os
import re
import string

ID_LENGTH = 25
ID_PATTERN = re.compile(r"^[a-z][0-9a-z]{24}$")
_ALPHABET = string.digits + string.ascii_lowercase
_TRIPLES = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]
_TRIPLE_BASE = 36**3
_BODY_SPACE = 36**24
_BYTES = 17  # 1 for the leading letter, 16 for the body


def _encode(raw: bytes) -> str:
    number = int.from_bytes(raw[1:], "big") % _BODY_SPACE
    parts = []
    for _ in range(8):
        number, rest = divmod(number, _TRIPLE_BASE)
        parts.append(_TRIPLES[rest])
    return _ALPHABET[10 + raw[0] % 26] + "".join(parts)


def new_id() -> str:
    """Return a new 25-character lowercase alphanumeric id."""
    return _encode(os.urandom(_BYTES))


def new_ids(count: int) -> list[str]:
    """Return `count` new ids, reading the randomness once."""
    pool = os.urandom(_BYTES * count)
    return [_encode(pool[i : i + _BYTES]) for i in range(0, _BYTES * count, _BYTES)]


def is_valid_id(value: str) -> bool:
    """True when `value` has the shape of an id made by `new_id`."""
    return bool(ID_PATTERN.match(value))
