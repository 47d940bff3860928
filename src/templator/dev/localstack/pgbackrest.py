"""pgBackRest for the embedded PostgreSQL: its configuration and the archive settings.

`var/pgbackrest/pgbackrest.conf` (mode 0600, owned by the account PostgreSQL runs as)
names the stanza `templator`, the data folder and socket, and a repository under
`var/pgbackrest/repo` encrypted with aes-256-cbc under a passphrase generated once.
PostgreSQL archives every WAL segment through `pgbackrest archive-push` (asynchronous,
zstd), with `archive_timeout` = 30 s: a segment is switched within 30 s of a write and
then pushed, so the RPO of 60 s holds with room for the push itself. Without the
pgbackrest binary the stack runs without archiving, as before.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
from pathlib import Path

# Re-exported: the stanza and the binary are the backup's (backup/pgbackrest.py).
from templator.backup.pgbackrest import STANZA as STANZA
from templator.backup.pgbackrest import pgbackrest_binary as pgbackrest_binary

log = logging.getLogger("templator.localstack")

ARCHIVE_TIMEOUT = 30


def config_path(root: Path) -> Path:
    """Where the configuration lives for a PostgreSQL folder `root` (var/postgres)."""
    return root.parent / "pgbackrest" / "pgbackrest.conf"


def _existing_cipher(conf: Path) -> str | None:
    try:
        for line in conf.read_text().splitlines():
            if line.startswith("repo1-cipher-pass="):
                return line.split("=", 1)[1].strip()
    except OSError:
        return None
    return None


def write_config(
    root: Path, *, data: Path, socket_dir: Path, user: str, owner: tuple[int, int] | None
) -> Path:
    """Write (or refresh) pgbackrest.conf for the server in `data`; keep its passphrase."""
    conf = config_path(root)
    base = conf.parent
    folders = [base, base / "repo", base / "spool", base / "log", base / "lock"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        if owner is not None:
            os.chown(folder, *owner)
    cipher = _existing_cipher(conf) or secrets.token_urlsafe(48)
    text = "\n".join(
        [
            "[global]",
            f"repo1-path={base / 'repo'}",
            "repo1-cipher-type=aes-256-cbc",
            f"repo1-cipher-pass={cipher}",
            # Sets are expired one by one by `templator backup prune` (expire --set).
            "repo1-retention-full=9999999",
            "compress-type=zst",
            "compress-level=3",
            "process-max=2",
            "archive-async=y",
            f"spool-path={base / 'spool'}",
            f"lock-path={base / 'lock'}",
            f"log-path={base / 'log'}",
            "log-level-console=warn",
            "log-level-file=info",
            "start-fast=y",
            "delta=y",
            "",
            f"[{STANZA}]",
            f"pg1-path={data}",
            f"pg1-socket-path={socket_dir}",
            f"pg1-user={user}",
            "",
        ]
    )
    tmp = conf.with_name(conf.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(tmp, *owner)
    tmp.replace(conf)
    return conf


def archive_settings(conf: Path) -> dict[str, str]:
    """The postgresql.conf settings that archive WAL through pgBackRest."""
    binary = pgbackrest_binary() or "pgbackrest"
    return {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": f"{binary} --config={conf} --stanza={STANZA} archive-push %p",
        "archive_timeout": str(ARCHIVE_TIMEOUT),
        "max_wal_size": "1GB",
    }


def ensure_stanza(conf: Path, *, port: int, user: str | None) -> None:
    """Create the stanza once, so archive-push succeeds from the first WAL segment on.

    Without it every archive attempt fails and PostgreSQL keeps all WAL in pg_wal until
    one succeeds. Best effort: a failure is logged, the server runs on.
    """
    binary = pgbackrest_binary()
    if binary is None or (conf.parent / "repo" / "backup" / STANZA / "backup.info").exists():
        return
    try:
        result = subprocess.run(
            [
                binary,
                f"--config={conf}",
                f"--stanza={STANZA}",
                f"--pg1-port={port}",
                "stanza-create",
            ],
            capture_output=True,
            text=True,
            user=user,
            cwd="/",
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("pgbackrest stanza-create failed: %s; WAL is not archived", exc)
        return
    if result.returncode != 0:
        log.warning(
            "pgbackrest stanza-create failed (%s); WAL is not archived",
            result.stderr.strip()[-300:],
        )
