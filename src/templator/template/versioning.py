"""Semantic version bumps, change logs and diffs of template snapshots."""

from __future__ import annotations

import difflib
import hashlib
from typing import TypedDict

from pydantic import JsonValue

from templator.template.schemas import FieldDiff

CONTENT_FIELDS = (
    "name",
    "description",
    "html_content",
    "css_content",
    "js_content",
    "hubspot_config",
    "tags",
    "quality_score",
)
TEXT_FIELDS = ("html_content", "css_content", "js_content")
SMALL = 200

Content = dict[str, JsonValue]
"""A template's `CONTENT_FIELDS` (all or some of them) as JSON: a version's `content`, or
the fields a change sets."""
FieldChange = TypedDict("FieldChange", {"field": str, "from": JsonValue, "to": JsonValue})
"""One changed field of a change log: small values in full, large text as length + hash."""


class ChangeLog(TypedDict):
    """A version's `changes`: what made it, who, and which fields changed."""

    summary: str
    by: str
    fields: list[FieldChange]


def bump(version: str, kind: str) -> str:
    """1.2.3 + patch → 1.2.4; minor → 1.3.0; major → 2.0.0."""
    major, minor, patch = (int(part) for part in version.split("."))
    if kind == "major":
        return f"{major + 1}.0.0"
    if kind == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _summary(value: JsonValue) -> JsonValue:
    if isinstance(value, str) and len(value) > SMALL:
        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        return {"length": len(value), "sha256": digest}
    return value


def change_log(before: Content | None, after: Content) -> list[FieldChange]:
    """Which fields changed: small values in full, large text as length + hash."""
    changes: list[FieldChange] = []
    for field in CONTENT_FIELDS:
        old = before.get(field) if before else None
        new = after.get(field)
        if before is None or old != new:
            changes.append({"field": field, "from": _summary(old), "to": _summary(new)})
    return changes


def json_paths(a: JsonValue, b: JsonValue, prefix: str = "") -> list[str]:
    """Paths where two JSON values differ (a.b[2].c style)."""
    if isinstance(a, dict) and isinstance(b, dict):
        paths: list[str] = []
        for key in sorted(set(a) | set(b)):
            sub = f"{prefix}.{key}" if prefix else str(key)
            if key not in a or key not in b:
                paths.append(sub)
            else:
                paths += json_paths(a[key], b[key], sub)
        return paths
    if isinstance(a, list) and isinstance(b, list):
        paths = []
        for i in range(max(len(a), len(b))):
            sub = f"{prefix}[{i}]"
            if i >= len(a) or i >= len(b):
                paths.append(sub)
            else:
                paths += json_paths(a[i], b[i], sub)
        return paths
    return [] if a == b else [prefix or "$"]


def _field_diff(field: str, old: JsonValue, new: JsonValue) -> FieldDiff:
    if old == new:
        return FieldDiff(field=field, changed=False)
    if field in TEXT_FIELDS:
        unified = difflib.unified_diff(
            str(old or "").splitlines(keepends=True),
            str(new or "").splitlines(keepends=True),
            fromfile=f"{field}@a",
            tofile=f"{field}@b",
        )
        return FieldDiff(field=field, changed=True, unified_diff="".join(unified))
    if field == "hubspot_config":
        return FieldDiff(field=field, changed=True, changed_paths=json_paths(old, new))
    return FieldDiff(field=field, changed=True, before=old, after=new)


def diff_contents(a: Content, b: Content) -> list[FieldDiff]:
    """Per-field diff of two snapshots."""
    return [_field_diff(field, a.get(field), b.get(field)) for field in CONTENT_FIELDS]
