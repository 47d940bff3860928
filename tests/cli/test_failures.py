"""Every command, through a matrix of expected failures: one line naming the problem, a
non-zero exit, never a traceback.

The commands are enumerated from the root app, so a new command is driven through the
store outages without a line here when it takes no required argument; one that does must
be given its arguments in `ARGS` (the enumeration test says so). Store outages are made
by pointing a URL at a closed port, or a secret or bucket at nothing, so the matrix runs
in-process and in seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from typer.testing import CliRunner

from templator.cli.main import app
from templator.config import get_settings
from templator.dev.localstack.process import free_port
from templator.dev.localstack.seaweedfs import SeaweedFS
from templator.kit.ids import new_id
from templator.migrations import runner
from tests.plugins.s3 import ACCESS_KEY, SECRET_KEY, s3_settings
from tests.support import servers

cli = CliRunner()
EMAIL = "matrix@example.com"

# Stores whose outage must make the command fail (the others it may do without: the
# cache degrades to PostgreSQL, so a Redis outage fails only what backs up or probes it).
PG, REDIS, S3 = "postgres", "redis", "s3"
REQUIRES: dict[str, set[str]] = {
    "db prune-logs": {PG},
    "db migrate": {PG},
    "db downgrade": {PG},
    "db current": {PG},
    "db seed": {PG},
    "db reset": {PG},
    "up": {PG},
    "user create": {PG},
    "user set-role": {PG},
    "token create": {PG},
    "token list": {PG},
    "token revoke": {PG},
    "module export": {PG},
    "module export --upload": {PG, S3},
    "module import": {PG},
    "module check": {PG},
    "storage gc": {PG, S3},
    "backup create": {PG, REDIS, S3},
    "backup restore": {PG, REDIS, S3},
    # Redis or the object store down is `degraded` (exit 0), as /health/ready says.
    "health": {PG},
    "db optimize": {PG},
    "backup list": set(),
    "backup keygen": set(),
    "backup verify": set(),
    "backup prune": set(),
    "demo": set(),
    "worker": set(),
    "monitor": set(),
}
# Pairs where the outage is no failure, and why.
TOLERATED = {
    ("backup create", "s3 missing bucket"): "SeaweedFS answers a missing bucket's listing "
    "as an empty one; the set then has no objects (to look into)",
    ("backup restore", "s3 missing bucket"): "SeaweedFS creates a bucket on its first PUT",
    ("module export --upload", "s3 missing bucket"): "SeaweedFS creates a bucket on its first PUT",
}
NOT_IN_MATRIX = {
    "pgadmin": "installs pgAdmin and serves it until Ctrl-C (tests/pgadmin)",
    "serve": "serves until Ctrl-C; the API answers store outages itself (tests/api)",
}


@dataclass(frozen=True)
class Fault:
    """One way a store can fail, as environment overrides."""

    name: str
    store: str
    mentions: str  # a pattern the message must contain


FAULTS = (
    Fault("postgres unreachable", PG, r"PostgreSQL|postgres"),
    Fault("redis unreachable", REDIS, r"Redis|redis"),
    Fault("s3 unreachable", S3, r"object store|object_store|S3_ENDPOINT_URL"),
    Fault(
        "s3 wrong secret",
        S3,
        r"credentials|S3_SECRET_KEY|SignatureDoesNotMatch|object_store.*(403|Forbidden)",
    ),
    Fault("s3 missing bucket", S3, r"bucket|Bucket"),
)


@dataclass
class Env:
    """The healthy environment and the fixtures the commands work on."""

    values: dict[str, str]
    tmp: Path
    template_id: str
    project_id: str
    module_dir: Path
    backup_name: str

    def faulty(self, fault: Fault) -> dict[str, str]:
        closed = f"127.0.0.1:{free_port()}"
        env = dict(self.values)
        if fault.name == "postgres unreachable":
            env["DATABASE_URL"] = f"postgresql://postgres@{closed}/matrix"
        elif fault.name == "redis unreachable":
            env["REDIS_URL"] = f"redis://{closed}/0"
        elif fault.name == "s3 unreachable":
            env["S3_ENDPOINT_URL"] = f"http://{closed}"
        elif fault.name == "s3 wrong secret":
            env["S3_SECRET_KEY"] = "not-the-secret"
        elif fault.name == "s3 missing bucket":
            env["S3_BUCKET"] = f"missing-{uuid.uuid4().hex[:8]}"
        return env


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str, BaseException | None]:
    """Run `templator ARGS` in-process; (exit code, output as one line, escaped error)."""
    get_settings.cache_clear()
    try:
        result = cli.invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, " ".join(result.output.split()), escaped


def invoke_bounded(args: list[str], env: dict[str, str], *, timeout: float = 30) -> str:
    """Run `templator ARGS` as a process that may take at most `timeout` seconds: a
    command this file does not know may wait for Ctrl-C (a live view, a server)."""
    templator = str(Path(sys.executable).parent / "templator")
    try:
        done = subprocess.run(
            [templator, *args],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"templator {' '.join(args)} ran past {timeout:g} s: give it arguments that "
            "make it finish (e.g. --once) in ARGS, and its stores in REQUIRES"
        )
    return done.stdout + done.stderr


def assert_clean_failure(args: list[str], env: dict[str, str], mentions: str) -> None:
    """A non-zero exit, no traceback, and a message matching `mentions`."""
    code, output, escaped = invoke(args, env)
    shown = f"templator {' '.join(args)} → exit {code}: {output[:600]}"
    print(shown)  # shown with `pytest -s`: the messages an operator would read
    assert escaped is None, f"{shown}\nescaped: {escaped!r}"
    assert code != 0, shown
    assert "Traceback" not in output, shown
    assert re.search(mentions, output), f"{shown}\nexpected to mention {mentions!r}"


@pytest.fixture(scope="module")
def env(
    redis_url: str, s3_server: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    """A migrated database of its own, a bucket, a template, a module and a backup."""
    name, url = servers.create_database("templator_matrix")
    runner.upgrade(url)
    tmp = tmp_path_factory.mktemp("matrix")
    (tmp / "var").mkdir()
    conf = s3_settings(s3_server)
    values = {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "S3_ENDPOINT_URL": s3_server.endpoint_url,
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": conf.s3_bucket,
        "BACKUP_DIR": str(tmp / "backups"),
        "VAR_DIR": str(tmp / "var"),
        "CACHE_NAMESPACE": "matrix",
        "DB_CONNECT_TIMEOUT": "1",
        "REDIS_RETRIES": "0",
        "REDIS_CONNECT_TIMEOUT": "0.5",
        "S3_CONNECT_TIMEOUT": "0.5",
    }
    from templator.storage.service import ObjectStore

    store = ObjectStore.from_settings(conf, endpoint_url=s3_server.endpoint_url)
    store.ensure_bucket()
    # An object, so that a backup has objects to restore (and restore needs the store).
    store.client.put_object(Bucket=store.bucket, Key="designs/matrix/a.txt", Body=b"kept")
    user_id, project_id = new_id(), new_id()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user_id, EMAIL))
        conn.execute(
            "INSERT INTO projects (id, name, user_id) VALUES (%s, 'matrix', %s)",
            (project_id, user_id),
        )
    module_dir = tmp / "hero.module"
    module_dir.mkdir()
    (module_dir / "meta.json").write_text('{"label": "Hero", "content_types": ["SITE_PAGE"]}')
    (module_dir / "module.html").write_text("<h1>{{ module.title }}</h1>")
    code, output, _ = invoke(
        ["module", "import", str(module_dir), "--project", project_id, "--json"], values
    )
    assert code == 0, output
    template_id = json.loads(output)["imported"][0]["template_id"]
    # A cache key of the namespace, so that the backup has keys to restore (and restore
    # needs Redis).
    with Redis.from_url(redis_url) as cache:
        cache.set("matrix:probe", b"1", ex=3600)
    code, output, _ = invoke(["backup", "create", "--json"], values)
    assert code == 0, output
    backup_name = json.loads(output)["name"]
    yield Env(values, tmp, template_id, project_id, module_dir, backup_name)
    store.delete_many([o["key"] for o in store.iter_objects()])
    store.client.delete_bucket(Bucket=store.bucket)
    servers.drop_database(name)
    shutil.rmtree(tmp, ignore_errors=True)


def ARGS(e: Env) -> dict[str, list[str]]:
    """How to call each command so that it gets past its own parsing to the stores."""
    out = str(e.tmp / "out.zip")
    return {
        "db prune-logs": ["--yes"],
        "db downgrade": ["base", "--yes"],
        "db seed": ["--users", "1", "--sessions", "0", "--templates", "0"],
        "db reset": ["--yes"],
        "up": ["--port", str(free_port()), "--no-seed-demo"],
        "user create": ["--email", f"{uuid.uuid4().hex[:8]}@example.com"],
        "user set-role": [EMAIL, "EXPERT"],
        "token create": ["--user", EMAIL],
        "token list": ["--user", EMAIL],
        "token revoke": ["nosuchtoken", "--user", EMAIL],
        "module export": [e.template_id, "-o", out],
        "module export --upload": ["module", "export", e.template_id, "-o", out, "--upload"],
        "module import": [str(e.module_dir), "--project", e.project_id],
        "module check": [e.template_id],
        "storage gc": [],
        "backup create": [],
        "backup restore": [e.backup_name, "--yes"],
        "backup verify": [e.backup_name],
        "backup keygen": ["-o", str(e.tmp / f"key-{uuid.uuid4().hex[:6]}")],
        "demo": ["--url", f"http://127.0.0.1:{free_port()}"],
        "worker": ["--url", f"http://127.0.0.1:{free_port()}"],
        "monitor": ["--once", "--json"],
        "db optimize": ["--dry-run"],
    }


def leaf_commands() -> list[tuple[str, bool]]:
    """Every runnable command path of the app, and whether it has required parameters."""
    import typer.main

    found: list[tuple[str, bool]] = []

    def walk(command: object, path: list[str]) -> None:
        group = command
        if hasattr(group, "load") and hasattr(group, "_lazy"):
            for name in list(group._lazy):
                group.load(name)
        commands = getattr(group, "commands", None)
        if commands:
            for name, sub in commands.items():
                walk(sub, [*path, name])
            return
        required = any(p.required for p in getattr(command, "params", []))
        found.append((" ".join(path), required))

    walk(typer.main.get_command(app), [])
    return found


def command_args(label: str, e: Env) -> list[str]:
    table = ARGS(e)
    args = table.get(label, [])
    return args if label.startswith("module export --") else [*label.split(), *args]


def test_every_command_is_in_the_matrix_or_callable_without_arguments(env: Env) -> None:
    table = ARGS(env)
    missing = [
        path
        for path, required in leaf_commands()
        if required and path not in table and path not in NOT_IN_MATRIX
    ]
    assert not missing, f"give these commands their arguments in ARGS: {missing}"


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_store_outage_is_one_line_naming_the_store(env: Env, fault: Fault) -> None:
    """Each command that needs the store fails cleanly; unknown new commands at least
    never show a traceback."""
    labels = [path for path, _ in leaf_commands() if path not in NOT_IN_MATRIX]
    labels += [label for label in REQUIRES if label not in labels]
    for label in labels:
        args = command_args(label, env)
        faulty = env.faulty(fault)
        needs = REQUIRES.get(label)
        if needs is None:  # a command this file does not know yet
            output = invoke_bounded(args, faulty)
            assert "Traceback" not in output, (label, fault.name, output[-600:])
        elif fault.store in needs and (label, fault.name) not in TOLERATED:
            assert_clean_failure(args, faulty, fault.mentions)


CASES = [
    # (id, args(env), pattern the message must match)
    (
        "project id malformed",
        lambda e: ["module", "import", str(e.module_dir), "--project", "bp1"],
        r"project_id|project",
    ),
    (
        "template id malformed",
        lambda e: ["module", "export", "bp1", "-o", str(e.tmp / "x.zip")],
        r"template|bp1",
    ),
    (
        "template unknown",
        lambda e: ["module", "export", new_id(), "-o", str(e.tmp / "x.zip")],
        r"template|not found|no ",
    ),
    (
        "export into a missing folder",
        lambda e: ["module", "export", e.template_id, "-o", str(e.tmp / "nope" / "x.zip")],
        r"nope/x\.zip.*does not exist",
    ),
    (
        "export onto a folder",
        lambda e: ["module", "export", e.template_id, "-o", str(e.tmp)],
        r"is a folder",
    ),
    (
        "import a file that is not a module",
        lambda e: ["module", "import", str(e.tmp / "garbage.zip"), "--project", e.project_id],
        r"zip|module",
    ),
    (
        "import a missing path",
        lambda e: ["module", "import", str(e.tmp / "absent.zip"), "--project", e.project_id],
        r"absent\.zip|does not exist",
    ),
    (
        "user unknown for set-role",
        lambda e: ["user", "set-role", "nobody@example.com", "ADMIN"],
        r"nobody@example\.com|not found|no user",
    ),
    (
        "user unknown for a token",
        lambda e: ["token", "create", "--user", "nobody@example.com"],
        r"nobody@example\.com|not found|no user",
    ),
    ("user email invalid", lambda e: ["user", "create", "--email", "not-an-email"], r"email"),
    (
        "revision unknown",
        lambda e: ["db", "downgrade", "nosuchrevision", "--yes"],
        r"nosuchrevision",
    ),
    ("backup unknown", lambda e: ["backup", "verify", "nosuchbackup"], r"nosuchbackup"),
    (
        "backup dir is a file",
        lambda e: ["backup", "create", "--dir", str(e.tmp / "garbage.zip")],
        r"garbage\.zip",
    ),
    (
        "restore from a dir that is a file",
        lambda e: ["backup", "restore", "x", "--dir", str(e.tmp / "garbage.zip"), "--yes"],
        r"garbage\.zip|no backup",
    ),
    ("no API for the demo", lambda e: ["demo", "--url", "http://127.0.0.1:9"], r"no API answers"),
    (
        "no API for the worker",
        lambda e: ["worker", "--url", "http://127.0.0.1:9"],
        r"no API answers",
    ),
    ("age malformed", lambda e: ["storage", "gc", "--grace", "soon"], r"grace|d, h or m"),
]


@pytest.mark.parametrize(("args", "mentions"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_naming_it(env: Env, args, mentions: str) -> None:  # type: ignore[no-untyped-def]
    (env.tmp / "garbage.zip").write_bytes(b"this is not a zip file")
    assert_clean_failure(args(env), env.values, mentions)


@pytest.mark.parametrize(
    "manifest", [b"{not json", b"[]", b'{"name": 1}'], ids=["not JSON", "a list", "wrong fields"]
)
@pytest.mark.parametrize(
    "command",
    [["backup", "verify", "BAD"], ["backup", "restore", "BAD", "--yes"]],
    ids=["verify", "restore"],
)
def test_corrupt_manifest_is_one_line_naming_the_file(
    env: Env, manifest: bytes, command: list[str]
) -> None:
    backups = env.tmp / f"corrupt-{uuid.uuid4().hex[:6]}"
    folder = backups / "templator-20260101T000000Z"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_bytes(manifest)
    args = [folder.name if a == "BAD" else a for a in command]
    values = {**env.values, "BACKUP_DIR": str(backups)}
    assert_clean_failure(args, values, r"manifest\.json")


@pytest.mark.parametrize(
    "manifest", [b"{not json", b"[]", b'{"name": 1}'], ids=["not JSON", "a list", "wrong fields"]
)
@pytest.mark.parametrize(
    "command",
    [["backup", "list", "--json"], ["backup", "prune", "--keep-last", "1", "--yes", "--json"]],
    ids=["list", "prune"],
)
def test_a_corrupt_manifest_never_stops_list_or_prune(
    env: Env, manifest: bytes, command: list[str]
) -> None:
    """One damaged set is reported by name; the command still works on the others."""
    backups = env.tmp / f"corrupt-{uuid.uuid4().hex[:6]}"
    folder = backups / "templator-20260101T000000Z"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_bytes(manifest)
    code, output, escaped = invoke(command, {**env.values, "BACKUP_DIR": str(backups)})
    assert escaped is None and "Traceback" not in output, output
    assert code == 0, output
    assert folder.name in output, output


def test_verbose_shows_the_traceback_too(env: Env) -> None:
    faulty = env.faulty(FAULTS[0])
    code, output, _ = invoke(["-v", "user", "create", "--email", "v@example.com"], faulty)
    assert code == 1
    assert "Traceback" in output and "PostgreSQL" in output


def test_invalid_setting_is_one_line_naming_the_variable_not_its_value(env: Env) -> None:
    values = {**env.values, "DATABASE_URL": "mysql://admin:hunter2@db/x", "DB_POOL_SIZE": "many"}
    code, output, escaped = invoke(["db", "current"], values)
    assert escaped is None and code != 0 and "Traceback" not in output
    assert "DATABASE_URL" in output and "DB_POOL_SIZE" in output
    assert "hunter2" not in output
