"""`templator monitor`: the stores' figures live in the terminal, refreshing like `top`.

The figures are those of `/metrics` and the dashboard (monitoring/stores.py), gathered by
this process on connections of its own; `--once --json` prints one snapshot for scripts.
Heavy modules are imported inside the command.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from templator.exceptions import first_line


def _size(n: float | None) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TiB"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _ago(unix: float | None, now: float) -> str:
    if not unix:
        return "never"
    seconds = now - unix
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def render(snapshot: dict[str, Any]) -> Any:
    """The snapshot as a Rich renderable (a grid of panels)."""
    from datetime import datetime

    from rich.columns import Columns
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    now = snapshot["at"]
    stores = snapshot["stores"]

    def panel(name: str, title: str, rows: list[tuple[str, str]]) -> Panel:
        state = stores.get(name)
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(justify="right", no_wrap=True)
        if state is None:
            grid.add_row("not configured", "")
            badge = "[dim]–[/]"
        elif state["up"]:
            for key, value in rows:
                grid.add_row(key, value)
            badge = "[green]up[/]"
        else:
            first = first_line(str(state["error"]))[:80]
            grid.add_row("error", f"[red]{first}[/]")
            badge = "[bold red]DOWN[/]"
        return Panel(grid, title=f"{title} {badge}", title_align="left", width=52)

    def figures(name: str) -> dict[str, Any]:
        state = stores.get(name) or {}
        return state.get("figures") or {}

    pg = figures("postgres")
    db = pg.get("database", {})
    xid_age = max((w["age_datfrozenxid"] for w in pg.get("wraparound", [])), default=0)
    busy = [a["max_tx_duration"] for a in pg.get("activity", []) if a["state"] != "idle"]
    pg_rows = [
        ("connections", f"{pg.get('connections')} / {pg.get('max_connections')}"),
        ("buffer-cache hit ratio", _pct(pg.get("cache_hit_ratio"))),
        ("database size", _size(db.get("size_bytes"))),
        ("commits / rollbacks", f"{db.get('xact_commit', 0):,} / {db.get('xact_rollback', 0):,}"),
        ("deadlocks", f"{db.get('deadlocks', 0):,}"),
        ("temp bytes", _size(db.get("temp_bytes"))),
        ("longest transaction", f"{max(busy, default=0.0):.1f} s"),
        ("xid age", f"{xid_age:,}"),
        (
            "role",
            f"replica, lag {pg.get('replica_lag_seconds', 0):.1f} s"
            if pg.get("is_replica")
            else f"primary, {len(pg.get('replicas', []))} replica(s)",
        ),
    ] if pg else []  # fmt: skip
    redis = figures("redis")
    lookups = (redis.get("keyspace_hits") or 0) + (redis.get("keyspace_misses") or 0)
    redis_rows = [
        ("memory", f"{_size(redis.get('used_memory'))} / "
                   f"{_size(redis['maxmemory']) if redis.get('maxmemory') else 'no limit'}"),
        ("evicted keys", f"{redis.get('evicted_keys', 0):,}"),
        ("keyspace hit ratio", _pct(redis.get("keyspace_hits", 0) / lookups) if lookups else "–"),
        ("clients", f"{redis.get('connected_clients', 0):,}"),
        ("keys", f"{sum(redis.get('db_keys', {}).values()):,}"),
    ] if redis else []  # fmt: skip
    objects = figures("object_store")
    object_rows = [("bucket", str(objects.get("bucket", "")))] + [
        (prefix or "(root)", f"{entry['objects']:,} · {_size(entry['bytes'])}")
        for prefix, entry in sorted(objects.get("prefixes", {}).items())
    ]
    disk_rows = [
        (fs["path"][-24:], f"{_pct(1 - fs['avail_bytes'] / fs['size_bytes'])} used, "
                           f"{_size(fs['avail_bytes'])} free")
        for fs in figures("filesystem").get("filesystems", [])
    ]  # fmt: skip
    domain = figures("domain")
    recent = domain.get("recent_sessions", {})
    finished = sum(row["count"] for row in recent.values())
    failed = recent.get("FAILED", {}).get("count", 0)
    sessions, templates = domain.get("sessions", {}), domain.get("templates", {})
    domain_rows = [
        *((f"sessions {status}", f"{count:,}") for status, count in sessions.items()),
        ("failed, last 15 min", f"{failed} of {finished}"),
        *((f"templates {status}", f"{count:,}") for status, count in templates.items()),
    ]

    tables = Table(title="Tables", title_justify="left", expand=False)
    for column in ("table", "rows", "dead", "size", "indexes", "last autovacuum"):
        tables.add_column(column, justify="left" if column == "table" else "right")
    for row in pg.get("tables", [])[:10]:
        tables.add_row(
            row["relname"],
            f"{row['n_live_tup']:,}",
            f"{row['n_dead_tup']:,}",
            _size(row["table_size_bytes"]),
            _size(row["index_size_bytes"]),
            _ago(row["last_autovacuum"], now),
        )
    panels = [
        panel("postgres", "PostgreSQL", pg_rows),
        panel("redis", "Redis", redis_rows),
        panel("object_store", "Object store", object_rows),
        panel("filesystem", "Disk", disk_rows),
        panel("domain", "Sessions and templates", domain_rows),
    ]
    stamp = datetime.fromtimestamp(now).strftime("%H:%M:%S")
    heading = f"[bold]templator monitor[/]  {stamp}  {snapshot.get('every', '')}"
    return Group(heading, Columns(panels), tables)


async def _snapshot(collector: Any, every: str = "") -> dict[str, Any]:
    import time

    await collector.refresh()
    return {"at": time.time(), "every": every, "stores": collector.snapshot()}


async def _watch(*, once: bool, as_json: bool, interval: float, timeout: float) -> bool:
    import asyncio

    from rich.live import Live

    from templator.cli.context import connections, console
    from templator.monitoring.collector import StoreCollector
    from templator.monitoring.metrics import store_sources

    async with connections() as conns:
        sources = store_sources(conns, role=conns.role)
        for source in sources:
            source.interval = 0  # every refresh asks afresh
        collector = StoreCollector(sources, timeout=timeout)
        try:
            every = "" if once else f"every {interval:g} s · Ctrl-C quits"
            snapshot = await _snapshot(collector, every)
            if once:
                if as_json:
                    del snapshot["every"]
                    print(json.dumps(snapshot, default=str))
                else:
                    console.print(render(snapshot))
                return all(state["up"] for state in snapshot["stores"].values())
            with Live(render(snapshot), console=console, screen=False, auto_refresh=False) as live:
                while True:
                    await asyncio.sleep(interval)
                    live.update(render(await _snapshot(collector, every)), refresh=True)
        finally:
            await collector.close()


def monitor(
    once: bool = typer.Option(False, "--once", help="Print one snapshot and exit."),
    as_json: bool = typer.Option(False, "--json", help="With --once: the snapshot as JSON."),
    interval: float = typer.Option(2.0, min=0.2, max=3600, help="Seconds between refreshes."),
    timeout: float = typer.Option(
        2.0, min=0.1, max=60, help="Seconds each store may take before it shows as down."
    ),
) -> None:
    """Live view of every store (PostgreSQL, Redis, object store, disk, sessions); Ctrl-C quits.

    With --once the exit code is 1 when a store is down.
    """
    from templator.cli.context import fail, run

    if as_json and not once:
        fail("--json needs --once (a live view cannot be read by a script)")
    if not run(_watch(once=once, as_json=as_json, interval=interval, timeout=timeout)):
        raise typer.Exit(1)
