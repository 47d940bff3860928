"""Semantic version bumps, change logs and diffs of template snapshots."""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

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


def bump(version: str, kind: str) -> str:
    """1.2.3 + patch → 1.2.4; minor → 1.3.0; major → 2.0.0."""
    major, minor, patch = (int(part) for part in version.split("."))
    if kind == "major":
        return f"{major + 1}.0.0"
    if kind == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _summary(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SMALL:
        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        return {"length": len(value), "sha256": digest}
    return value


def change_log(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """Which fields changed: small values in full, large text as length + hash."""
    changes = []
    for field in CONTENT_FIELDS:
        old = before.get(field) if before else None
        new = after.get(field)
        if before is None or old != new:
            changes.append({"field": field, "from": _summary(old), "to": _summary(new)})
    return changes


def json_paths(a: Any, b: Any, prefix: str = "") -> list[str]:
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


def diff_contents(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-field diff of two snapshots."""
    out = []
    for field in CONTENT_FIELDS:
        old, new = a.get(field), b.get(field)
        entry: dict[str, Any] = {"field": field, "changed": old != new}
        if old != new:
            if field in TEXT_FIELDS:
                entry["unified_diff"] = "".join(
                    difflib.unified_diff(
                        (old or "").splitlines(keepends=True),
                        (new or "").splitlines(keepends=True),
                        fromfile=f"{field}@a",
                        tofile=f"{field}@b",
                    )
                )
            elif field == "hubspot_config":
                entry["changed_paths"] = json_paths(old, new)
            else:
                entry["before"], entry["after"] = old, new
        out.append(entry)
    return out
