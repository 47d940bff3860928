"""Input rules every request model shares: storable text and numbers only.

PostgreSQL text cannot hold U+0000 and UTF-8 cannot encode a lone surrogate; left
unchecked, either becomes a 500 deep in a query; an integer beyond 2^53 - 1 would be
stored but not read back exactly by most clients. `RequestModel` refuses them up front,
in every string of the request, JSON payloads and dictionary keys included, naming
where they were found.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    Strict,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from templator.kit.ids import ID_PATTERN

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**53 - 1), 2**53 - 1
"""JSON integers every client can read back exactly (I-JSON, RFC 7493): a JavaScript
number holds no more; orjson's OPT_STRICT_INTEGER checks the same range in C."""


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
    if isinstance(value, int) and not isinstance(value, bool) and not INT_MIN <= value <= INT_MAX:
        return (path or "$", f"is an integer outside ±{INT_MAX:,} (2^53 - 1)")
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


# What `RequestModel` refuses, said in its JSON schema too, so the OpenAPI document
# describes exactly what is accepted: no NUL in any string or key, and free-form JSON
# (payloads, `data`) as `JsonValue`s, whose integers fit ±(2^53 - 1).
NO_NUL = r"^[^\x00]*$"


JSON_VALUE_REF = {"$ref": "#/components/schemas/JsonValue"}
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value whose strings hold no NUL and whose integers fit ±(2^53 - 1)",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": JSON_VALUE_REF},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": JSON_VALUE_REF,
        },
    ],
}
"""The `JsonValue` component of the OpenAPI document (api.contract adds it)."""


def _json_value() -> dict[str, Any]:
    # Wrapped: pydantic resolves a field's top-level $ref among its own definitions.
    return {"anyOf": [JSON_VALUE_REF]}


def _free_form(schema: dict[str, Any]) -> bool:
    keys = set(schema) - {"title", "description", "default", "examples"}
    return not keys


def storable_schema(schema: dict[str, Any]) -> None:
    """Add the text and number rules of `RequestModel` to a JSON schema, in place."""
    kind = schema.get("type")
    if kind == "string" and not {"pattern", "enum", "const", "format"} & set(schema):
        schema["pattern"] = NO_NUL
    if kind == "object":
        # A free-form object, or the keys a model with extra="allow" keeps as written:
        # their values are JSON values under the same rules.
        extra = schema.get("additionalProperties", True)
        if extra is True or extra == {}:
            schema["additionalProperties"] = _json_value()
        if extra is not False:
            schema["propertyNames"] = {"pattern": NO_NUL}
    if kind == "array" and "items" not in schema and "prefixItems" not in schema:
        schema["items"] = _json_value()
    if kind == "integer":
        # Bounds on a `JsonInt` (Strict + a validator) come out under their Python names.
        for python, json_name in (("ge", "minimum"), ("le", "maximum")):
            if python in schema:
                schema[json_name] = schema.pop(python)
        schema.setdefault("minimum", INT_MIN)
        schema.setdefault("maximum", INT_MAX)
    for key in ("properties", "$defs"):
        for sub in schema.get(key, {}).values():
            if isinstance(sub, dict):
                if _free_form(sub):
                    sub.update(_json_value())
                else:
                    storable_schema(sub)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            storable_schema(sub)
    items = schema.get("items")
    if isinstance(items, dict):
        if _free_form(items):
            items.update(_json_value())
        else:
            storable_schema(items)


def _json_int(value: Any) -> Any:
    # JSON (and JSON Schema) has one number type: 800.0 is the integer 800; true and "800"
    # are not integers at all, which pydantic's lax mode would let through.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_int), Strict()]
"""An integer field of a request: JSON numbers with no fraction, nothing else."""


def _model_schema(schema: dict[str, Any], cls: type) -> None:
    storable_schema(schema)


class RequestModel(BaseModel):
    """Base of every request body and query model: unknown fields and unstorable text refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_model_schema)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # Fast path in C: orjson refuses surrogates, integers past 2^53 and deep nesting,
        # and escapes NUL as \u0000. Only a suspect input pays for the walk that names
        # the offending path.
        try:
            encoded = orjson.dumps(data, default=str, option=orjson.OPT_STRICT_INTEGER)
        except (orjson.JSONEncodeError, TypeError):
            encoded = None
        if encoded is not None and b"\\u0000" not in encoded:
            # orjson writes ±Infinity and NaN (what `1e400` parses to) as null: only an
            # input with a null pays for the walk that looks for one.
            if b"null" in encoded and (loc := find_non_finite(data)) is not None:
                raise _non_finite_error(loc)
            return data
        found = find_bad_text(data)
        if found:
            raise ValueError(f"{found[0]} {found[1]}")
        if (loc := find_non_finite(data)) is not None:
            raise _non_finite_error(loc)
        return data


def find_non_finite(value: Any, loc: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """Where the first ±Infinity or NaN in `value` is (JSON has neither: a number such as
    1e400 overflows to one when parsed), or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else loc
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_non_finite(item, (*loc, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_non_finite(item, (*loc, i))
            if found is not None:
                return found
    return None


def _non_finite_error(loc: tuple[str | int, ...]) -> ValidationError:
    """A validation error at `loc` (the problem's `field` names it)."""
    return ValidationError.from_exception_data(
        "RequestModel",
        [
            InitErrorDetails(
                type=PydanticCustomError(
                    "finite_number",
                    "must be a finite number: a JSON number this large (e.g. 1e400) "
                    "cannot be stored",
                ),
                loc=loc,
                input=None,
            )
        ],
    )


IdPath = Annotated[str, Path(pattern=ID_PATTERN.pattern, description="A 25-character id")]
VERSION_PATTERN = r"^\d{1,6}\.\d{1,6}\.\d{1,6}$"
"""A template version as the API takes it: x.y.z."""
VersionPath = Annotated[str, Path(pattern=VERSION_PATTERN, description="x.y.z")]


# Date-times a client sends must be storable by PostgreSQL (offsets up to ±15:59) and
# readable back by the driver in any session time zone (years 1-9999 after conversion).
# A local year of 0002-9998 with such an offset always lands well inside both; the same
# rule is the JSON schema's pattern, so the OpenAPI document says exactly what is accepted.
DATETIME_PATTERN = (
    r"^(?:000[2-9]|00[1-9]\d|0[1-9]\d{2}|[1-8]\d{3}|9[0-8]\d{2}|99[0-8]\d|999[0-8])"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:[Zz]|[+-](?:0\d|1[0-5]):[0-5]\d)$"
)
_DATETIME_RE = re.compile(DATETIME_PATTERN)
DATETIME_RULE = (
    "must be an RFC 3339 date-time with a time zone (e.g. 2026-01-31T12:00:00Z), "
    "a year from 0002 to 9998 and a UTC offset within ±15:59"
)
EARLIEST_STORED = datetime(1, 1, 2, tzinfo=UTC)
LATEST_STORED = datetime(9999, 12, 20, tzinfo=UTC)
"""What the database itself accepts (ck_processing_logs_timestamp_readable): a day inside
the driver's range, so a reader in any time zone can convert it."""


def _storable_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None or abs(offset) >= timedelta(hours=16):
            raise ValueError(DATETIME_RULE)
        if not 2 <= value.year <= 9998:
            raise ValueError(DATETIME_RULE)
        return value
    if not isinstance(value, str) or not _DATETIME_RE.match(value):
        raise ValueError(DATETIME_RULE)
    return datetime.fromisoformat(value.upper())


StorableDatetime = Annotated[
    datetime,
    PlainValidator(_storable_datetime),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": DATETIME_PATTERN}),
]
"""A client-supplied date-time the database can store and every reader can read back."""
