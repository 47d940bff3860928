"""Schemathesis hooks of the contract test: HubSpot's rules that relate two values.

JSON Schema states each value's own rules, and the document states all of those; it
cannot relate one value to another. HubSpot's module format has a few such rules, which
the document says in words (the field types' descriptions) and the API refuses with a
422: sibling fields have distinct names; a number field's `min` is at most its `max`
and its default lies between them; a repeater's `occurrence.min` is at most its `max`;
a choice field's default is one of its choices; a color default is a hex color; an image
default is an object with text `src`/`alt` and integer sizes. A generated
`hubspot_config` that breaks only these rules is repaired here (names made distinct,
bounds swapped, the offending default dropped), touching nothing a schema states.
Schemathesis then checks the case again against the document: a negative case the repair
made valid becomes a positive one, so the checks still hold the API to exactly what the
document says.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import schemathesis

from templator.api.idempotency import KEY_PATTERN

NAME = re.compile(r"^[A-Za-z0-9_]{1,100}$")
IDEM_KEY = re.compile(KEY_PATTERN)
HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _defaults(field: dict[str, Any]) -> list[Any]:
    # As `_FieldBase.defaults`: each item of a repeater's list, else the one value.
    default = field.get("default")
    if field.get("occurrence") is not None and isinstance(default, list):
        return [item for item in default if item is not None]
    return [] if default is None else [default]


def _default_fits(field: dict[str, Any]) -> bool:
    kind, values = field.get("type"), _defaults(field)
    if kind == "number":
        low, high = field.get("min"), field.get("max")
        return all(
            _number(v) and not (_number(low) and v < low) and not (_number(high) and v > high)
            for v in values
        )
    if kind == "choice":
        choices = field.get("choices")
        if not isinstance(choices, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in choices
        ):
            return True  # the schema refuses these choices itself
        known = {str(pair[0]) for pair in choices}
        chosen = [c for v in values for c in (v if isinstance(v, list) else [v])]
        return all(str(c) in known for c in chosen)
    if kind == "color":
        colors = [v.get("color") for v in values if isinstance(v, dict)]
        return all(not isinstance(c, str) or not c or HEX_COLOR.match(c) for c in colors)
    if kind == "image":
        return all(isinstance(v, dict) and _image_default(v) for v in values)
    return True


def _image_default(value: dict[str, Any]) -> bool:
    texts = ("src", "alt", "size_type", "loading")
    sizes = ("width", "height", "max_width", "max_height")
    return all(value.get(k) is None or isinstance(value[k], str) for k in texts) and all(
        value.get(k) is None or (isinstance(value[k], int) and not isinstance(value[k], bool))
        for k in sizes
    )


def _swap_bounds(node: object) -> None:
    if (
        isinstance(node, dict)
        and _number(node.get("min"))
        and _number(node.get("max"))
        and node["min"] > node["max"]
    ):
        node["min"], node["max"] = node["max"], node["min"]


def _repair_fields(fields: object) -> None:
    if not isinstance(fields, list):
        return
    names = {f.get("name") for f in fields if isinstance(f, dict)}
    seen: set[str] = set()
    for field in fields:
        if not isinstance(field, dict):
            continue
        name = field.get("name")
        if isinstance(name, str) and NAME.match(name):
            if name in seen:
                number = 2
                while f"{name[:90]}_{number}" in names | seen:
                    number += 1
                field["name"] = name = f"{name[:90]}_{number}"
            seen.add(name)
        if isinstance(field.get("type"), str) and field["type"].lower() == "number":
            _swap_bounds(field)
        _swap_bounds(field.get("occurrence"))
        if isinstance(field.get("type"), str) and not _default_fits(
            {**field, "type": field["type"].lower()}
        ):
            field["default"] = None
        _repair_fields(field.get("children"))


def _fresh_key(case: Any) -> None:
    # A valid Idempotency-Key sent again with another body is refused by design (422
    # idempotency_key_reused, documented); the generator repeats simple values ("0")
    # across cases, so each case that sends a valid key gets a key of its own.
    headers = getattr(case, "headers", None) or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and IDEM_KEY.match(value):
            headers[name] = uuid.uuid4().hex


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """The case with its hubspot_config's related values made consistent (and a valid
    Idempotency-Key of its own)."""
    _fresh_key(case)
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("hubspot_config"), dict):
        repaired = copy.deepcopy(body)
        _repair_fields(repaired["hubspot_config"].get("fields"))
        if repaired != body:
            case.body = repaired
    return case
