"""The migration scripts' head and revisions, read without Alembic or SQLAlchemy (the
readiness check and `templator health`, which must start fast, both need them)."""

from __future__ import annotations

import re
from pathlib import Path


class SchemaBehind(Exception):
    """The database has not been migrated to the revision the code expects."""


VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"
_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([0-9a-z_]+)["']""", re.M)
_DOWN = re.compile(r"^down_revision\b.*$", re.M)  # one id, a tuple of them (a merge), or None
_QUOTED = re.compile(r"""["']([0-9a-z_]+)["']""")


def script_revisions() -> tuple[str | None, frozenset[str]]:
    """The head and every revision of the migration scripts, read from their
    `revision = "…"` / `down_revision = "…"` lines rather than by importing them through
    Alembic, which costs seconds on a loaded host (`templator health` runs this too).
    tests/health/test_schema_readiness.py checks it agrees with Alembic's own head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in VERSIONS.glob("*.py"):
        source = script.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        for line in _DOWN.findall(source):
            parents.update(_QUOTED.findall(line.split("=", 1)[-1]))
    heads = sorted(revisions - parents)
    return (heads[0] if len(heads) == 1 else None), frozenset(revisions)
