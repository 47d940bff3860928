"""Input rules every request model shares: storable text and numbers only.

PostgreSQL text cannot hold U+0000 and UTF-8 cannot encode a lone surrogate; left
unchecked, either becomes a 500 deep in a query; so would an integer JSON cannot carry
in 64 bits. `RequestModel` refuses them up front,
in every string of the request, JSON payloads and dictionary keys included, naming
where they were found.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Path
from pydantic import BaseModel, ConfigDict, model_validator

from templator.kit.ids import ID_PATTERN

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _bad_text(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain NUL (U+0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (unpaired surrogate)"
    return None


def find_bad_text(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """The first (path, reason) of a string that PostgreSQL/UTF-8 cannot store, if any."""
    if depth > MAX_DEPTH:
        return (path or "$", f"is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        reason = _bad_text(value)
        return (path or "$", reason) if reason else None
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    ):
        return (path or "$", "is an integer outside the 64-bit range")
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (reason := _bad_text(key)):
                return (sub, f"key {reason}")
            found = find_bad_text(item, sub, depth + 1)
            if found:
                return found
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_bad_text(item, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


class RequestModel(BaseModel):
    """Base of every request body and query model: unknown fields and unstorable text refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # Fast path in C: orjson refuses surrogates, >64-bit integers and deep nesting,
        # and escapes NUL as \u0000. Only a suspect input pays for the walk that names
        # the offending path.
        try:
            encoded = orjson.dumps(data, default=str)
        except (orjson.JSONEncodeError, TypeError):
            encoded = None
        if encoded is not None and b"\\u0000" not in encoded:
            return data
        found = find_bad_text(data)
        if found:
            raise ValueError(f"{found[0]} {found[1]}")
        return data


IdPath = Annotated[str, Path(pattern=ID_PATTERN.pattern, description="A 25-character id")]
VersionPath = Annotated[str, Path(pattern=r"^\d{1,6}\.\d{1,6}\.\d{1,6}$", description="x.y.z")]
