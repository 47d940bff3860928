"""A private PostgreSQL 15+ under the project's var/ folder.

Every connection authenticates with a password (scram-sha-256, pg_hba.conf rewritten on
each start). Two roles: `templator`, the owner (initdb's superuser), which runs the
migrations and the seed; `templator_app`, what everything else connects as — no
superuser, no CREATE, only reading and writing the tables' rows. Their generated
passwords live in var/secrets/ (0600). A cluster made by an older `templator up` with
`trust` is converted on its next start. The server listens on loopback only and its
socket folder is private (mode 0700). PostgreSQL refuses to run as root, so when we are
root initdb and postgres run as the `postgres` system account, which then owns
var/postgres/ and the socket folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from templator.dev.localstack import pgbackrest
from templator.dev.localstack.process import (
    LocalStackError,
    ProcessRecord,
    die_with_parent,
    drop_privileges_user,
    free_port,
    stop,
    wait_until,
)
from templator.dev.localstack.secrets import StackSecrets, secret_file

log = logging.getLogger("templator.localstack")

MIN_MAJOR = 15
USER = "templator"
APP_USER = "templator_app"
DATABASE = "templator"
HBA = """\
# Written by `templator up`; edits are overwritten on the next start. The socket folder is
# private (0700) to the account PostgreSQL runs as: that account alone may use it as the
# owner without a password (pgBackRest's backups and stanza checks), mapped in pg_ident.
local   all   templator             peer map=stack
local   all   all                   scram-sha-256
host    replication   all   127.0.0.1/32    scram-sha-256
host    all   all   127.0.0.1/32    scram-sha-256
host    all   all   ::1/128         scram-sha-256
"""
_LEGACY_HBA = """\
# Written by `templator up` for one start: converting a `trust` cluster to passwords.
local   all   all                   trust
host    all   all   127.0.0.1/32    trust
"""
_AUTH_MARKER = "templator-auth"
# What the application role may do: rows, not schema. Tables made later by the owner
# (migrations) get the same through default privileges.
_APP_GRANTS = (
    "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {app}",
    "GRANT USAGE ON SCHEMA public TO {app}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {app}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
    "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {app}",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "GRANT pg_monitor TO {app}",
)
# Modest sizes so the stack runs on a small laptop; the planner knobs assume an SSD.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "effective_cache_size": "1GB",
    "maintenance_work_mem": "64MB",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
    "default_statistics_target": "100",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "fsync": "on",
    "logging_collector": "off",
}
# Linux's sun_path holds 108 bytes; PostgreSQL appends "/.s.PGSQL.<port>" to the folder.
_SOCKET_PATH_LIMIT = 100
_INSTALL_HINT = (
    "install them (Debian: `apt-get install postgresql-15`, or run "
    "scripts/install-system-deps.sh), or set DATABASE_URL to use an existing server"
)


def _major_version(postgres: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\)\s*(\d+)", out) or re.search(r"(\d+)", out)
    return int(match.group(1)) if match else None


def _candidate_bindirs() -> list[Path]:
    folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
            ).stdout.strip()
            if out:
                folders.append(Path(out))
    on_path = shutil.which("postgres")
    if on_path:
        folders.append(Path(on_path).resolve().parent)
    return folders


def find_bindir() -> Path:
    """The newest PostgreSQL (≥ 15) server binaries on this machine."""
    usable: dict[Path, int] = {}
    too_old: list[str] = []
    for folder in _candidate_bindirs():
        if folder in usable or not all((folder / b).exists() for b in ("postgres", "initdb")):
            continue
        major = _major_version(folder / "postgres")
        if major is None:
            continue
        if major >= MIN_MAJOR:
            usable[folder] = major
        else:
            too_old.append(f"{major} in {folder}")
    if not usable:
        found = f" (found only PostgreSQL {', '.join(too_old)})" if too_old else ""
        raise LocalStackError(
            f"no PostgreSQL {MIN_MAJOR}+ server binaries found{found}: " + _INSTALL_HINT
        )
    return max(usable, key=lambda folder: usable[folder])


def short_socket_dir(wanted: Path) -> Path:
    """`wanted`, or a private folder under the temp dir when socket paths would be too long."""
    if len(str(wanted / ".s.PGSQL.65535").encode()) < _SOCKET_PATH_LIMIT:
        return wanted
    digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"templator-pg-{digest}"


def setfacl_binary() -> str | None:
    """`setfacl`, when the machine has it."""
    return shutil.which("setfacl")


class LocalPostgres:
    """initdb on first start, then `postgres` in the foreground as our child."""

    def __init__(self, data_dir: Path, *, socket_dir: Path, port: int | None = None) -> None:
        self.root = data_dir
        self.data = data_dir / "data"
        self.socket_dir = short_socket_dir(socket_dir)
        self.port = port or free_port()
        self.log = data_dir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.record: ProcessRecord | None = None
        self.archive_conf: Path | None = None
        self.run_as = drop_privileges_user()
        self.bindir = find_bindir()
        self.secrets = StackSecrets(data_dir.parent)
        self.owner_password = self.app_password = ""  # read (or made) by start()
        self._converting = False
        if self.run_as:
            try:
                self._account = pwd.getpwnam(self.run_as)
            except KeyError:
                raise LocalStackError(
                    f"PostgreSQL refuses to run as root and there is no {self.run_as!r} "
                    "account to run it as: install Debian's postgresql package (it creates "
                    "the account) or run `templator up` as a normal user"
                ) from None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the project database for the application role."""
        return (
            f"postgresql+psycopg://{APP_USER}:{self.app_password}@127.0.0.1:{self.port}/{DATABASE}"
        )

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the project database for the owner (migrations, seed)."""
        return f"postgresql+psycopg://{USER}:{self.owner_password}@127.0.0.1:{self.port}/{DATABASE}"

    def _write_private(self, path: Path, text: str) -> None:
        """Write a file only the server's account reads (hba, a password file)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(path, 0o600)
        self._chown(path)

    def initialised(self) -> bool:
        """True once initdb has run."""
        return (self.data / "PG_VERSION").exists()

    def _chown(self, path: Path) -> None:
        if self.run_as:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _ensure_reachable(self) -> None:
        """When we are root, PostgreSQL runs as `postgres`: it must be able to reach var/.

        A folder on the way that the account may not enter (a `mktemp -d` parent, a 0700
        home) gets one POSIX ACL entry granting that account search (`x`) only — not
        read, and nobody else — with a warning naming it. Without `setfacl` (Debian's
        `acl`, which scripts/install-system-deps.sh installs) the start is refused with
        the fix.
        """
        if not self.run_as:
            return
        existing = [f for f in [self.root, *self.root.parents] if f.exists()]
        if not existing or self._can_enter(existing[0]):
            return
        for folder in reversed(existing):  # from / down, so each test sees the path open
            if self._can_enter(folder):
                continue
            setfacl = setfacl_binary()
            if setfacl is None:
                raise LocalStackError(
                    f"PostgreSQL refuses to run as root, so it runs as {self.run_as!r}, which "
                    f"cannot enter {folder}: install `acl` (setfacl) to let this be granted, "
                    f"make it traversable (chmod o+x {folder}), or set VAR_DIR to a folder "
                    "under a traversable path"
                )
            subprocess.run([setfacl, "-m", f"u:{self.run_as}:x", str(folder)], check=True)
            log.warning(
                "granted %r search access (ACL u:%s:x) to %s so PostgreSQL can reach %s",
                self.run_as,
                self.run_as,
                folder,
                self.root,
            )

    def _can_enter(self, folder: Path) -> bool:
        """Whether the account PostgreSQL runs as can reach `folder` (asked as that account)."""
        probe = subprocess.run(["test", "-x", str(folder)], user=self.run_as, check=False)
        return probe.returncode == 0

    def _prepare_dirs(self) -> None:
        self._ensure_reachable()
        for folder in (self.root, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True)
            self._chown(folder)
        if self.socket_dir.stat().st_uid != os.geteuid() and not self.run_as:
            raise LocalStackError(f"socket folder {self.socket_dir} belongs to another user")
        os.chmod(self.socket_dir, 0o700)

    def _initdb(self) -> None:
        pwfile = self.root / ".initdb-password"
        self._write_private(pwfile, self.owner_password + "\n")
        args = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER]
        args += ["--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C"]
        try:
            result = subprocess.run(
                args, capture_output=True, text=True, user=self.run_as, cwd=self.root, check=False
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            raise LocalStackError(f"initdb failed: {result.stderr.strip()[-800:]}")

    def _clear_stale_lock(self) -> None:
        """Deal with postmaster.pid left by a server whose owner died.

        We hold the stack lock, so a postgres still serving this data folder is an orphan of
        ours: stop it. A lock naming a pid that is now some other program would make
        PostgreSQL refuse to start: remove it.
        """
        lock = self.data / "postmaster.pid"
        try:
            pid = int(lock.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            process = psutil.Process(pid)
            ours = process.name() == "postgres" and str(self.data) in " ".join(process.cmdline())
        except psutil.Error:
            ours = False
        if ours:
            stop(ProcessRecord.of(pid), sig=signal.SIGINT)
        lock.unlink(missing_ok=True)

    def kill_leftovers(self) -> list[int]:
        """SIGKILL the backends a dead postmaster left behind; return their pids.

        PostgreSQL's children put themselves in process groups of their own, so the
        postmaster's group does not hold them; while one lives, the shared memory it
        holds makes a new postmaster refuse to start. They are found by what only they
        share: a `postgres` program whose working folder is this data folder.
        """
        killed: list[psutil.Process] = []
        for process in psutil.process_iter(["name"]):
            try:
                if process.info["name"] != "postgres" or process.cwd() != str(self.data):
                    continue
                process.kill()
                killed.append(process)
            except psutil.Error:
                continue
        psutil.wait_procs(killed, timeout=5)
        return [process.pid for process in killed]

    def start(self) -> ProcessRecord:
        """Spawn the server (running initdb on first use) without waiting for it."""
        self._prepare_dirs()
        self.owner_password = secret_file(self.secrets.postgres_owner)
        self.app_password = secret_file(self.secrets.postgres_app)
        if self.initialised():
            self._clear_stale_lock()
        else:
            self._initdb()
            self._write_private(self.data / _AUTH_MARKER, "scram-sha-256\n")
        # A cluster from before passwords starts once with trust, to set them (wait_ready).
        self._converting = not (self.data / _AUTH_MARKER).exists()
        self._write_private(self.data / "pg_hba.conf", _LEGACY_HBA if self._converting else HBA)
        self._write_private(self.data / "pg_ident.conf", f"stack  {self._os_user()}  {USER}\n")
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        args += ["-k", str(self.socket_dir)]
        for key, value in {**SETTINGS, **self._archive_settings()}.items():
            args += ["-c", f"{key}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                user=self.run_as,
                start_new_session=True,
                # SIGINT is PostgreSQL's "fast shutdown".
                preexec_fn=die_with_parent(signal.SIGINT),
            )
        self._chown(self.log)
        self.record = ProcessRecord.of(self.process.pid)
        return self.record

    def _archive_settings(self) -> dict[str, str]:
        """WAL archiving through pgBackRest (backups, issue #12), when it is installed."""
        if pgbackrest.pgbackrest_binary() is None:
            return {}
        owner = (self._account.pw_uid, self._account.pw_gid) if self.run_as else None
        self.archive_conf = pgbackrest.write_config(
            self.root, data=self.data, socket_dir=self.socket_dir, user=USER, owner=owner
        )
        return pgbackrest.archive_settings(self.archive_conf)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        """Block until the server accepts connections, then make sure the database exists."""
        assert self.process is not None, "start() first"
        admin = self._owner_conninfo("postgres")

        def ready() -> bool:
            try:
                with psycopg.connect(admin, connect_timeout=1, autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return True
            except psycopg.OperationalError:
                return False

        wait_until(ready, process=self.process, timeout=timeout, what="PostgreSQL", log=self.log)
        self._configure_roles()
        if self.archive_conf is not None:
            pgbackrest.ensure_stanza(self.archive_conf, port=self.port, user=self.run_as)

    def _os_user(self) -> str:
        """The account PostgreSQL runs as (and pgBackRest with it)."""
        return self.run_as or pwd.getpwuid(os.geteuid()).pw_name

    def _owner_conninfo(self, database: str) -> str:
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1",
            port=self.port,
            user=USER,
            password=self.owner_password,
            dbname=database,
        )

    def _configure_roles(self) -> None:
        """Passwords of both roles (from var/secrets, so a new file takes effect), the
        application role and its grants; then, for a converted cluster, passwords only."""
        names = {
            "db": sql.Identifier(DATABASE),
            "app": sql.Identifier(APP_USER),
            "owner": sql.Identifier(USER),
        }
        with psycopg.connect(
            self._owner_conninfo(DATABASE), connect_timeout=5, autocommit=True
        ) as conn:
            recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if recovering and recovering[0]:
                return  # a standby: its roles are the primary's, replicated
            if not conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_USER,)
            ).fetchone():
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
                    ).format(**names)
                )
            # Only a SCRAM verifier (made by libpq here) reaches the server, and not into
            # pg_stat_statements or the server log: a password typed into a statement
            # is kept there as text.
            conn.execute("SET pg_stat_statements.track_utility = off")
            conn.execute("SET log_statement = 'none'")
            for role, password in ((USER, self.owner_password), (APP_USER, self.app_password)):
                verifier = conn.pgconn.encrypt_password(
                    password.encode(), role.encode(), b"scram-sha-256"
                )
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(verifier.decode())
                    )
                )
            for grant in _APP_GRANTS:
                conn.execute(sql.SQL(grant).format(**names))
            if self._converting:
                self._write_private(self.data / "pg_hba.conf", HBA)
                conn.execute("SELECT pg_reload_conf()")
                self._write_private(self.data / _AUTH_MARKER, "scram-sha-256\n")
                self._converting = False

    def stop(self, *, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL of its process group; safe to call twice."""
        if self.record is not None:
            stop(self.record, sig=signal.SIGINT, timeout=timeout)
        if self.process is not None:
            self.process.poll()
