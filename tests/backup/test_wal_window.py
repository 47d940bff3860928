"""Prune keeps what a point-in-time restore within the WAL window needs."""

from __future__ import annotations

from templator.backup import retention
from templator.backup.catalog import SetInfo
from templator.backup.manifest import FileEntry, Manifest

POLICY = retention.Policy(last=1, daily=2, weekly=0, monthly=0)


def _set(name: str, at: str, blobs: list[str], *, method: str = "pgbackrest") -> SetInfo:
    manifest = Manifest(
        name=name,
        created_at=at,
        database={"method": method, "label": f"label-{name}"},
        objects={"objects": len(blobs)},
        blobs=[FileEntry(b, 10, "0" * 64) for b in blobs],
    )
    return SetInfo(name, manifest)


def _sets(middle_blobs: list[str], *, method: str = "pgbackrest") -> list[SetInfo]:
    return [
        _set("a", "2026-11-29T10:00:00+00:00", ["kept"], method=method),
        _set("b", "2026-11-30T10:00:00+00:00", middle_blobs, method=method),
        _set("c", "2026-11-30T12:00:00+00:00", ["kept"], method=method),
    ]


def test_a_set_in_the_window_holding_an_object_no_kept_set_holds_is_kept() -> None:
    delete, keep = retention.plan(_sets(["kept", "deleted-since"]), POLICY)
    assert delete == []
    assert keep["b"] == "WAL window: 1 blobs no kept set holds"
    assert set(keep) == {"a", "b", "c"}


def test_a_set_in_the_window_whose_objects_kept_sets_hold_goes() -> None:
    delete, keep = retention.plan(_sets(["kept"]), POLICY)
    assert delete == ["b"]
    assert set(keep) == {"a", "c"}


def test_logical_sets_have_no_wal_window() -> None:
    delete, _ = retention.plan(_sets(["kept", "deleted-since"], method="pg_dump"), POLICY)
    assert delete == ["b"]


def test_sets_older_than_the_window_go_whatever_they_hold() -> None:
    sets = [
        _set("old", "2026-11-20T10:00:00+00:00", ["only-here"]),
        *_sets(["kept"]),
    ]
    delete, keep = retention.plan(sets, POLICY)
    assert sorted(delete) == ["b", "old"]
    assert set(keep) == {"a", "c"}
