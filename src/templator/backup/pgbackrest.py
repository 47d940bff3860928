"""PostgreSQL, the physical path: pgBackRest base backups and its WAL archive (PITR).

Used when the server is ours to configure — the embedded one of `templator up`, whose
pgbackrest.conf (repository cipher, async archiving, zstd) lives under VAR_DIR. A set
then records the pgBackRest backup label instead of holding a dump; the WAL archive
between sets gives restores to any time (`--to-time`), to the end of the archive
(`latest`), or to the set's own consistent point. pgBackRest runs as the account that
owns the data folder, supervised like every other tool.
"""

from __future__ import annotations

import configparser
import os
import pwd
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy.engine import make_url

from templator.backup import pg_logical
from templator.backup.catalog import Progress
from templator.backup.errors import BackupToolFailed
from templator.backup.manifest import Manifest
from templator.backup.tools import base_env, run_tool, tool_version
from templator.config import Settings
from templator.connections import StoreUrls
from templator.kit.process import drop_privileges_user

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STANZA = "templator"
"""The stanza of our pgBackRest configuration (the local stack writes it, backups use it)."""


def pgbackrest_binary() -> str | None:
    """`pgbackrest`, when installed."""
    return shutil.which("pgbackrest")


class Server(Protocol):
    """What a restore needs of the PostgreSQL it replaces: stop it, start it again."""

    port: int

    def stop(self) -> None: ...
    def start(self) -> Any: ...
    def wait_ready(self) -> None: ...


def _config_of(settings: Settings) -> Path:
    return settings.var_dir / "pgbackrest" / "pgbackrest.conf"


def _pg1_path(conf: Path) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(conf)
        return parser.get(STANZA, "pg1-path")
    except (configparser.Error, OSError):
        return None


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class Pitr:
    """pgBackRest commands for one stanza."""

    def __init__(
        self, *, conf: Path, url: str, run_as: str | None, server: Server | None = None
    ) -> None:
        self.conf = conf
        self.url = url
        self.run_as = run_as
        self.server = server
        self.kind = "incr"

    def _run(self, *args: str, port: int | None = None) -> str:
        binary = pgbackrest_binary()
        if binary is None:
            raise BackupToolFailed("pgbackrest is not installed (scripts/install-system-deps.sh)")
        command = [binary, f"--config={self.conf}", f"--stanza={STANZA}"]
        if port is not None:
            command.append(f"--pg1-port={port}")
        return run_tool(
            [*command, *args], env=base_env(), what=f"pgbackrest {args[-1]}", user=self.run_as
        )

    def _port(self) -> int:
        if self.server is not None:
            return self.server.port
        return int(make_url(self.url).port or 5432)

    def info(self) -> dict[str, Any]:
        """The stanza's `info --output=json`."""
        data = orjson.loads(self._run("--output=json", "info"))
        return data[0] if data else {}

    def _ensure_stanza(self) -> None:
        status = self.info().get("status", {}).get("code")
        if status not in (0, 2):  # 0 ok, 2 no valid backup yet; anything else: create it
            self._run("stanza-create", port=self._port())

    def backup(self, snap: pg_logical.Snapshot, *, progress: Progress) -> dict[str, Any]:
        """A base backup of type self.kind (pgBackRest makes the first one full)."""
        self._ensure_stanza()
        before = {b["label"] for b in self.info().get("backup", [])}
        progress("postgres", 0, None)
        self._run(f"--type={self.kind}", "backup", port=self._port())
        made = [b for b in self.info().get("backup", []) if b["label"] not in before]
        if not made:
            raise BackupToolFailed("pgbackrest backup finished but no new backup is listed")
        entry = made[-1]
        size = int(entry.get("info", {}).get("repository", {}).get("delta", 0))
        progress("postgres", size, -1)
        return {
            "method": "pgbackrest",
            "stanza": STANZA,
            "label": entry["label"],
            "type": entry["type"],
            "prior": entry.get("prior"),
            "start_at": _iso(entry["timestamp"]["start"]),
            "stop_at": _iso(entry["timestamp"]["stop"]),
            "lsn_start": entry["lsn"]["start"],
            "lsn_stop": entry["lsn"]["stop"],
            "bytes": size,
            "database_bytes": int(entry.get("info", {}).get("size", 0)),
            "server_version": snap.server_version,
            "tool": tool_version(pgbackrest_binary() or "pgbackrest"),
        }

    def check(self, label: str) -> None:
        """Raise unless the pgBackRest repository answers and still holds backup `label`."""
        if label not in {b["label"] for b in self.info().get("backup", [])}:
            raise BackupToolFailed(f"pgBackRest no longer holds backup {label}")

    def verify(self, label: str) -> None:
        """`pgbackrest verify`: every backup file and WAL segment against its checksum."""
        self.check(label)
        self._run("verify")

    def referenced_keys(self) -> set[str]:
        """stored_objects keys now (after the base backup ended)."""
        with pg_logical.connect(self.url) as conn:
            if not conn.execute("SELECT to_regclass('stored_objects')").fetchone()[0]:  # type: ignore[index]
                return set()
            return {str(row[0]) for row in conn.execute("SELECT key FROM stored_objects")}

    def restore(
        self,
        manifest: Manifest,
        *,
        to_time: datetime | None,
        to_end: bool = False,
        progress: Progress,
    ) -> None:
        """Stop the server, restore (delta) to the time / end of archive / set, start it."""
        if self.server is None:
            raise BackupToolFailed("a pgBackRest restore needs the embedded server to restart")
        if to_time is not None:
            target = ["--type=time", f"--target={to_time.isoformat(sep=' ')}"]
            target.append("--target-action=promote")
        elif to_end:
            target = ["--type=default"]
        else:
            label = str(manifest.database["label"])
            target = [f"--set={label}", "--type=immediate", "--target-action=promote"]
        self.server.stop()
        self._ensure_data_folder()
        self._run("--delta", *target, "restore")
        self.server.start()
        self.server.wait_ready()
        self.url = _with_port(self.url, self.server.port)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with pg_logical.connect(self.url, database="postgres", autocommit=True) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
                    return
            time.sleep(0.2)
        raise BackupToolFailed("PostgreSQL did not finish recovery within 300 s")

    def _ensure_data_folder(self) -> None:
        """pgBackRest restores only into an existing folder: remake a lost one (0700)."""
        data = _pg1_path(self.conf)
        if data is None or Path(data).is_dir():
            return
        Path(data).mkdir(mode=0o700, parents=True)
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(data, account.pw_uid, account.pw_gid)

    def expire(self, kept: list[Manifest]) -> list[str]:
        """Expire pgBackRest backups no kept set needs (WAL before them goes too)."""
        needed = {
            str(m.database.get("label")) for m in kept if m.database.get("method") == "pgbackrest"
        }
        backups = self.info().get("backup", [])
        for entry in backups:
            if entry["label"] in needed:
                needed.update(entry.get("reference") or [])
        doomed = [b["label"] for b in backups if b["label"] not in needed]
        if not needed:
            return []  # never expire everything: the archive would be left without a base
        for label in reversed(doomed):
            self._run(f"--set={label}", "expire")
        return doomed

    def archive_lag(self) -> float | None:
        """Seconds of writes not yet in the archive (the current RPO); 0 when none wait."""
        with pg_logical.connect(self.url, database="postgres", autocommit=True) as conn:
            row = conn.execute(
                "SELECT a.last_archived_wal, extract(epoch FROM now() - a.last_archived_time),"
                " w.file_name, w.file_offset"
                " FROM pg_stat_archiver a, pg_walfile_name_offset(pg_current_wal_lsn()) w"
            ).fetchone()
        if row is None or row[0] is None:
            return None
        last, age, current, offset = str(row[0]), float(row[1]), str(row[2]), int(row[3])
        if current == _next_segment(last) and offset == 0:
            return 0.0  # the segment in progress is empty: everything written is archived
        return round(age, 1)


def _next_segment(name: str) -> str:
    timeline, log, seg = name[:8], int(name[8:16], 16), int(name[16:24], 16)
    seg += 1
    if seg > 0xFF:
        log, seg = log + 1, 0
    return f"{timeline}{log:08X}{seg:08X}"


def _with_port(url: str, port: int) -> str:
    return make_url(url).set(port=port).render_as_string(hide_password=False)


def for_server(settings: Settings, urls: StoreUrls, server: Server | None = None) -> Pitr | None:
    """A Pitr when the server of `urls` is the embedded one configured for pgBackRest."""
    conf = _config_of(settings)
    if pgbackrest_binary() is None or not conf.is_file():
        return None
    data_dir = _pg1_path(conf)
    host = make_url(urls.database_url).host or ""
    if data_dir is None or (host and host not in LOOPBACK):
        return None
    try:
        with pg_logical.connect(urls.database_url, database="postgres", autocommit=True) as conn:
            served = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
    except Exception:  # no answer or no privilege: not ours to drive
        return None
    if Path(str(served)).resolve() != Path(data_dir).resolve():
        return None
    return Pitr(conf=conf, url=urls.database_url, run_as=drop_privileges_user(), server=server)
