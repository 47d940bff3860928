"""Retention by policy (newest per day/week/month), leftovers, unreferenced blobs; status.

Prune holds the repository lock, so it never races a create: a `.partial` it sees is a
leftover of a create that died. Inside the WAL window (from the oldest kept pgBackRest
set to now, every moment restorable) a set that holds objects no kept set holds is kept
too, so a point-in-time restore finds every object its rows refer to. A damaged set is
never deleted by policy — it is reported by name for the operator to inspect — and
while one exists, blobs are not collected (its manifest can no longer say which blobs it
needs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from templator.backup import catalog
from templator.backup.catalog import Repo, SetInfo
from templator.backup.crypto import BackupKey
from templator.backup.lock import repository_lock
from templator.backup.manifest import Manifest
from templator.backup.set_store import blob_path


@dataclass(frozen=True, slots=True)
class Policy:
    """How many sets to keep: the newest `last`, and the newest of each recent period."""

    last: int = 1
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


@dataclass
class PrunePlan:
    """What a prune deletes and why it keeps the rest."""

    delete: list[str] = field(default_factory=list)
    keep: dict[str, str] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    blobs_skipped: str | None = None


def _created(manifest: Manifest) -> datetime:
    return datetime.fromisoformat(manifest.created_at)


def plan(sets: list[SetInfo], policy: Policy) -> tuple[list[str], dict[str, str]]:
    """Grandfather-father-son: which intact sets to keep (with the reason) and delete."""
    good = sorted((s.manifest for s in sets if s.manifest is not None), key=_created, reverse=True)
    keep: dict[str, str] = {}
    for manifest in good[: policy.last]:
        keep[manifest.name] = "newest"
    buckets = (
        ("daily", policy.daily, lambda d: d.strftime("%Y-%m-%d")),
        ("weekly", policy.weekly, lambda d: f"{d.isocalendar()[0]}-W{d.isocalendar()[1]:02d}"),
        ("monthly", policy.monthly, lambda d: d.strftime("%Y-%m")),
    )
    for label, count, period in buckets:
        seen: list[str] = []
        for manifest in good:
            slot = period(_created(manifest))
            if slot in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(slot)
            keep.setdefault(manifest.name, f"{label} {slot}")
    keep.update(_wal_window(good, keep))
    delete = [m.name for m in good if m.name not in keep]
    return delete, keep


def _wal_window(good: list[Manifest], keep: dict[str, str]) -> dict[str, str]:
    """Sets a point-in-time restore within the WAL window may still need.

    The window runs from the oldest kept pgBackRest set to now: pgBackRest keeps the WAL
    of all of it, so any moment in it can be restored. The rows of such a moment may
    refer to an object that was deleted from the bucket before the next kept set was
    made: only a set in between holds it. So a set inside the window that holds a blob
    no kept set holds stays, whatever the policy says (with its pgBackRest backup).
    """
    pitr = [m for m in good if m.name in keep and m.database.get("method") == "pgbackrest"]
    if not pitr:
        return {}
    start = min(_created(m) for m in pitr)
    held = {b.path for m in good if m.name in keep for b in m.blobs}
    extra: dict[str, str] = {}
    for manifest in sorted(good, key=_created):
        if manifest.name in keep or _created(manifest) <= start:
            continue
        unique = {b.path for b in manifest.blobs} - held
        if unique:
            extra[manifest.name] = f"WAL window: {len(unique)} blobs no kept set holds"
            held |= unique
    return extra


def prune(
    repo: Repo,
    policy: Policy,
    *,
    key: BackupKey | None,
    dry_run: bool = False,
    wait: float = 0.0,
    expire: Any = None,
) -> PrunePlan:
    """Delete what the policy does not keep, leftovers of dead creates, unused blobs."""
    with repository_lock(repo.lock_path, command="backup prune", wait=wait):
        sets = catalog.list_sets(repo, key)
        result = PrunePlan()
        result.delete, result.keep = plan(sets, policy)
        result.damaged = [f"{s.name}: {s.problem}" for s in sets if s.manifest is None]
        result.leftovers = repo.leftovers()
        kept = [
            s.manifest for s in sets if s.manifest is not None and s.manifest.name in result.keep
        ]
        if result.damaged:
            result.blobs_skipped = "a damaged set may still need them"
        else:
            needed = {b.path for m in kept for b in m.blobs}
            result.blobs = sorted(
                rel
                for rel, _ in repo.files("blobs")
                if rel.rsplit("/", 1)[-1] not in needed and rel == blob_path(rel.rsplit("/", 1)[-1])
            )
        if dry_run:
            return result
        for name in result.delete:
            repo.delete_set(name)
        for name in result.leftovers:
            repo.delete_set(name)
        for rel in result.blobs:
            repo.delete(rel)
        if expire is not None:
            expire(kept)
        return result


def status(repo: Repo, key: BackupKey | None, *, archive_lag: float | None) -> dict[str, Any]:
    """Freshness of the repository: newest good set, newest drill, WAL lag, size."""
    sets = catalog.list_sets(repo, key)
    good = [s.manifest for s in sets if s.manifest is not None]
    newest = max(good, key=_created, default=None)
    now = datetime.now(UTC)
    drills: list[dict[str, Any]] = []
    for manifest in good:
        for result in catalog.read_drills(repo, manifest.name):
            drills.append({**result, "set": manifest.name})
    last_drill = max(drills, key=lambda d: str(d.get("at", "")), default=None)
    last_ok_drill = max(
        (d for d in drills if d.get("ok")), key=lambda d: str(d.get("at", "")), default=None
    )
    return {
        "repository": repo.url,
        "sets": len(good),
        "damaged": [s.name for s in sets if s.manifest is None],
        "leftovers": len(repo.leftovers()),
        "newest": newest.name if newest else None,
        "newest_at": newest.created_at if newest else None,
        "newest_age_seconds": round((now - _created(newest)).total_seconds(), 1)
        if newest
        else None,
        "newest_encrypted": newest.encrypted if newest else None,
        "last_drill": last_drill,
        "last_successful_drill_at": last_ok_drill.get("at") if last_ok_drill else None,
        "archive_lag_seconds": archive_lag,
        "repository_bytes": repo.total_bytes(),
    }
