"""What `make deploy-check` proves on a running deployment; each returns a one-line note."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import yaml
from compose import LONG_RUNNING, Deployment
from engine import CheckFailed

from templator.dev.demo.flow import run_story

SECRET_NAMES = (
    "DB_SUPERUSER_PASSWORD",
    "DB_MIGRATION_PASSWORD",
    "DB_PASSWORD",
    "PGBACKREST_CIPHER_PASSWORD",
    "REDIS_PASSWORD",
    "S3_ADMIN_SECRET_KEY",
    "S3_SECRET_KEY",
    "PGADMIN_PASSWORD",
)
NEEDS = {
    # Passwords a service's environment may hold: what it uses, nothing more. PostgreSQL
    # reads the three role passwords on first initialisation only, and pgBackRest's
    # archive-push needs the repository cipher at every WAL segment.
    "postgres": {
        "DB_SUPERUSER_PASSWORD",
        "DB_MIGRATION_PASSWORD",
        "DB_PASSWORD",
        "PGBACKREST_CIPHER_PASSWORD",
    },
    "redis": {"REDIS_PASSWORD"},
    "seaweedfs": {"S3_ADMIN_SECRET_KEY", "S3_SECRET_KEY"},
    "migrate": {"DB_MIGRATION_PASSWORD"},
    "api": {"DB_PASSWORD", "REDIS_PASSWORD", "S3_SECRET_KEY"},
    "pgadmin": {"PGADMIN_PASSWORD"},
    "prometheus": set(),
}


def read_env(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (single quotes stripped)."""
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'")
    return values


def healthy(d: Deployment) -> str:
    """Every long-running service healthy and `migrate` exited 0."""
    d.wait_healthy(timeout=420)
    migrate = d.docker(
        "ps",
        "-a",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={d.project}",
        "--filter",
        "label=com.docker.compose.service=migrate",
    ).split()
    if not migrate:
        raise CheckFailed("no migrate container")
    state = json.loads(d.docker("inspect", migrate[0]))[0]["State"]
    if state["Status"] != "exited" or state["ExitCode"] != 0:
        raise CheckFailed(f"migrate: {state['Status']} exit {state['ExitCode']}")
    return f"{len(LONG_RUNNING)} services healthy; migrate exited 0"


def ready_over_tls(d: Deployment) -> str:
    """/health/ready 200 with every store up (401 without the monitoring token); the API's
    database sessions all TLS."""
    body = d.wait_ready(timeout=120)
    if d.monitoring_headers():
        bare = httpx.get(f"{d.api}/health/ready", timeout=10).status_code
        if bare != 401:
            raise CheckFailed(f"/health/ready without the monitoring token: {bare}, not 401")
    components = body.get("components", {})
    down = [k for k, v in components.items() if v.get("status") != "up"]
    if body.get("status") != "up" or body.get("down") or down or not components:
        raise CheckFailed(f"/health/ready: {json.dumps(body)[:600]}")
    rows = d.sql(
        "SELECT ssl, count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
        "WHERE usename = 'templator_app' GROUP BY ssl"
    )
    if not rows or any(line.startswith("f") for line in rows.splitlines()):
        raise CheckFailed(f"the API's sessions are not all TLS: {rows!r}")
    redis_args = " ".join(d.inspect("redis")["Config"]["Entrypoint"] or [])
    if "--port 0" not in redis_args:
        raise CheckFailed("Redis keeps a plain-text port")
    sessions = rows.replace("\n", ", ").replace("t|", "over TLS: ")
    return f"{', '.join(sorted(components))} up; the API's sessions to PostgreSQL {sessions}"


def make_user(d: Deployment, email: str, *, role: str = "USER", scope: str | None = None) -> str:
    """A user and a one-day token (of `scope`, if given), made with the CLI in the API's
    container; the token."""
    d.exec("api", "templator", "user", "create", "--email", email, "--role", role, "--json")
    scoped = ["--scope", scope] if scope else []
    out = d.exec(
        "api",
        "templator",
        "token",
        "create",
        "--user",
        email,
        "--expires-days",
        "1",
        *scoped,
        "--json",
    )
    token: str = json.loads(out)["token"]
    return token


def demo(d: Deployment) -> str:
    """The demo's whole story through the published port (the web app's calls, then a
    `templator worker` on this host with a worker credential); the module URL downloads."""
    token = make_user(d, "demo@deploy-check.example")
    worker = make_user(d, "worker@deploy-check.example", role="ADMIN", scope="worker")
    result = run_story(d.api, token, worker_token=worker, sessions=2, workers=1, timeout=180)
    done = [s for s in result.sessions if s.status == "COMPLETED" and s.template_id]
    if len(done) != len(result.sessions):
        states = ", ".join(f"{s.id} {s.status}" for s in result.sessions)
        raise CheckFailed(f"the workers did not complete every session: {states}")
    if not result.download_url:
        raise CheckFailed("the demo exported no module")
    got = httpx.get(result.download_url, timeout=30)
    if got.status_code != 200 or not zipfile.is_zipfile(io.BytesIO(got.content)):
        raise CheckFailed(f"presigned URL: {got.status_code} {got.content[:120]!r}")
    url = result.download_url.split("?")[0]
    return (
        f"{len(result.steps)} web-app calls, {len(done)} sessions worked into templates; "
        f"module {len(got.content):,} bytes from {url}"
    )


def count_users(d: Deployment, pattern: str) -> int:
    """Users whose email matches a LIKE pattern."""
    return int(d.sql(f"SELECT count(*) FROM users WHERE email LIKE '{pattern}'"))


def backup_restore(d: Deployment, env: dict[str, str]) -> str:
    """`templator backup create` in the API's container; a later write; the set restored.

    The API's role may not create databases, so the restore runs as the operator would:
    a one-off container of the API's image as the superuser (its password passed by
    name, never on a command line), into a database of its own beside the live one.
    """
    out = d.exec("api", "templator", "backup", "create", "--json", timeout=600)
    name = json.loads(out)["name"]
    make_user(d, "after-backup@deploy-check.example")
    if count_users(d, "after-backup@%") != 1:
        raise CheckFailed("the write after the backup is missing")
    d.compose(
        "run",
        "--rm",
        "--no-deps",
        "-e",
        "DB_USER=postgres",
        "-e",
        "DB_PASSWORD",
        "api",
        "templator",
        "backup",
        "restore",
        name,
        "--only",
        "postgres",
        "--target-database",
        "templator_restored",
        "--yes",
        "--json",
        timeout=600,
        extra_env={"DB_PASSWORD": env["DB_SUPERUSER_PASSWORD"]},
    )
    restored = Deployment.sql
    after = int(
        restored(
            d,
            "SELECT count(*) FROM users WHERE email LIKE 'after-backup@%'",
            database="templator_restored",
        )
    )
    demo_users = int(
        restored(
            d, "SELECT count(*) FROM users WHERE email LIKE 'demo@%'", database="templator_restored"
        )
    )
    d.sql("DROP DATABASE templator_restored", database="postgres")
    if after != 0 or demo_users != 1:
        raise CheckFailed(f"restored: {after} later users (want 0), {demo_users} demo (want 1)")
    return f"set {name} made in the API container, restored beside the live database: as it was"


def point_in_time(d: Deployment) -> str:
    """pgBackRest full backup, writes either side of a time, restore to it: only the first."""
    pgbr = ("pgbackrest", "--stanza=templator")
    d.exec("postgres", *pgbr, "--type=full", "backup", user="postgres", timeout=600)
    make_user(d, "before-target@deploy-check.example")
    time.sleep(1.5)
    target = d.sql("SELECT now()")
    time.sleep(1.5)
    make_user(d, "after-target@deploy-check.example")
    d.sql("SELECT pg_switch_wal()")
    d.exec("postgres", *pgbr, "check", user="postgres", timeout=300)  # the segment is archived
    d.compose("stop", "api", "postgres", timeout=120)
    d.compose(
        "run",
        "--rm",
        "--no-deps",
        "-u",
        "postgres",
        "--entrypoint",
        "pgbackrest",
        "postgres",
        "--stanza=templator",
        "--delta",
        "--type=time",
        f"--target={target}",
        "--target-action=promote",
        "restore",
        timeout=600,
    )
    d.compose("up", "-d", "postgres", "api", timeout=300)
    d.wait_healthy(("postgres",), timeout=300)
    d.wait_ready(timeout=180)
    before, after = count_users(d, "before-target@%"), count_users(d, "after-target@%")
    if (before, after) != (1, 0):
        raise CheckFailed(
            f"restored to {target}: before-target {before} (want 1), after {after} (want 0)"
        )
    return f"restored to {target}: the write before it is there, the one after is not"


def prometheus(d: Deployment, release: Path) -> str:
    """The API target up; every alert rule of alerts.yml loaded and healthy."""
    base = f"http://127.0.0.1:{d.ports.prometheus}/api/v1"
    deadline = time.monotonic() + 120
    api_target: dict[str, Any] = {}
    while time.monotonic() < deadline:
        targets = httpx.get(f"{base}/targets", timeout=10).json()["data"]["activeTargets"]
        api_target = next((t for t in targets if t["labels"]["job"] == "templator-api"), {})
        if api_target.get("health") == "up":
            break
        time.sleep(3)
    else:
        raise CheckFailed(f"the API target is not up: {api_target}")
    groups = httpx.get(f"{base}/rules", timeout=10).json()["data"]["groups"]
    loaded = {r["name"]: r["health"] for g in groups for r in g["rules"]}
    wanted = yaml.safe_load((release / "deploy/prometheus/alerts.yml").read_text())
    names = {r["alert"] for g in wanted["groups"] for r in g["rules"] if "alert" in r}
    missing = names - set(loaded)
    bad = {k: v for k, v in loaded.items() if v not in ("ok", "unknown")}
    if missing or bad:
        raise CheckFailed(f"rules missing {sorted(missing)}, unhealthy {bad}")
    return f"API target up; {len(names)} alert rules loaded"


def pgadmin(d: Deployment, email: str) -> str:
    """pgAdmin answers through its port; the database is registered for the login."""
    base = f"http://127.0.0.1:{d.ports.pgadmin}"
    ping = httpx.get(f"{base}/misc/ping", timeout=10)
    login = httpx.get(f"{base}/login", timeout=10, follow_redirects=True)
    if ping.status_code != 200 or login.status_code != 200:
        raise CheckFailed(f"pgAdmin: ping {ping.status_code}, login {login.status_code}")
    d.exec(
        "pgadmin",
        "/venv/bin/python3",
        "/pgadmin4/setup.py",
        "dump-servers",
        "/tmp/servers.json",
        "--user",
        email,
    )
    servers = json.loads(d.exec("pgadmin", "cat", "/tmp/servers.json"))["Servers"]
    if not any(s["Host"] == "postgres" for s in servers.values()):
        raise CheckFailed(f"no server for postgres registered: {servers}")
    return f"ping and login page 200; registered: {', '.join(s['Name'] for s in servers.values())}"


def no_fatal(d: Deployment) -> str:
    """The PostgreSQL log holds no FATAL line (the old health check logged one every 10 s)."""
    log = d.compose("logs", "--no-color", "postgres")
    fatal = [ln for ln in log.splitlines() if "FATAL" in ln]
    if fatal:
        raise CheckFailed(f"{len(fatal)} FATAL lines, e.g. {fatal[0]}")
    return f"{len(log.splitlines())} log lines, no FATAL"


def restart(d: Deployment, *, bound: float = 180) -> str:
    """`stop` then `up -d`: ready again within `bound` seconds, the data kept."""
    users = count_users(d, "%")
    d.compose("stop", timeout=300)
    started = time.monotonic()
    d.compose("up", "-d", timeout=300)
    d.wait_ready(timeout=bound)
    took = time.monotonic() - started
    if count_users(d, "%") != users:
        raise CheckFailed("users changed across the restart")
    return f"ready {took:.1f}s after up (bound {bound:g}s); {users} users kept"


KILLS = 5
"""How often the check kills PostgreSQL, at most, to see one probe answered in the outage."""


def kill_postgres(d: Deployment, token: str, *, bound: float = 180) -> str:
    """SIGKILL of the server's postmaster: the API answers 503 database_unavailable, recovers.

    The probe writes (a project per call): a read may be served from the cache.
    """
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def poll() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=d.api, headers=headers, timeout=3) as client:
            while not stop.is_set():
                try:
                    answer = client.post("/api/v1/projects", json={"name": "outage probe"})
                    ok = answer.is_success
                    seen.append((answer.status_code, "" if ok else str(answer.json().get("code"))))
                except (httpx.HTTPError, ValueError):
                    seen.append((0, "no answer"))
                time.sleep(0.05)

    def ok(status: int) -> bool:
        return 200 <= status < 300

    def outage_seen() -> bool:
        return any(s == 503 for s, _ in seen)

    poller = threading.Thread(target=poll)
    poller.start()
    kills = 0
    try:
        time.sleep(0.5)
        started = time.monotonic()
        # PostgreSQL can be back within a second: when no probe landed in the outage, kill
        # it again once it is up (at most KILLS times) rather than fail by chance.
        while kills < KILLS and not outage_seen():
            d.wait_healthy(("postgres",), timeout=bound)
            os.kill(int(d.inspect("postgres")["State"]["Pid"]), 9)
            kills += 1
            round_started = time.monotonic()
            while time.monotonic() - round_started < bound:
                if (
                    seen
                    and ok(seen[-1][0])
                    and (outage_seen() or time.monotonic() - round_started > 5)
                ):
                    break
                time.sleep(0.2)
        took = time.monotonic() - started
    finally:
        stop.set()
        poller.join()
    outage = [(s, c) for s, c in seen if not ok(s)]
    if (503, "database_unavailable") not in outage:
        raise CheckFailed(f"no 503 database_unavailable; non-2xx answers: {sorted(set(outage))}")
    if not ok(seen[-1][0]):
        raise CheckFailed(f"not recovered within {bound:g}s: last {seen[-1]}")
    d.wait_healthy(("postgres", "api"), timeout=bound)
    codes = ", ".join(f"{s} {c}" for s, c in sorted(set(outage)))
    return (
        f"{len(outage)} answers during the outage ({codes}); recovered by itself in "
        f"{took:.1f}s ({kills} kill{'s' if kills > 1 else ''})"
    )


def secrets(d: Deployment, env: dict[str, str], images: list[str]) -> str:
    """No password in the environment of a service that does not use it, in image layers or logs."""
    values = {name: env[name] for name in SECRET_NAMES if env.get(name)}
    problems = []
    for service, allowed in NEEDS.items():
        container_env = "\n".join(d.inspect(service)["Config"]["Env"] or [])
        problems += [
            f"{n} in {service}'s env"
            for n, v in values.items()
            if n not in allowed and v in container_env
        ]
    for image in images:
        history = d.docker("history", "--no-trunc", image)
        problems += [f"{n} in {image}'s history" for n, v in values.items() if v in history]
        problems += [f"{n} in {image}'s layers" for n in _in_layers(d, image, values)]
    logs = d.compose("logs", "--no-color", timeout=120)
    problems += [f"{n} in the logs" for n, v in values.items() if v in logs]
    if problems:
        raise CheckFailed("; ".join(problems))
    return (
        f"{len(values)} secrets: in no env that does not use them, nor in {len(images)} "
        f"images' layers and history, nor in {len(logs.splitlines())} log lines"
    )


def _in_layers(d: Deployment, image: str, values: dict[str, str]) -> set[str]:
    """Secret names whose value appears in any file of the image (docker save)."""
    import subprocess

    found: set[str] = set()
    needles = {n: v.encode() for n, v in values.items()}
    with subprocess.Popen(
        ["docker", "save", image], stdout=subprocess.PIPE, env=d.engine.env
    ) as save:
        assert save.stdout is not None
        with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
            for member in outer:
                handle = outer.extractfile(member)
                if handle is None:
                    continue
                data = handle.read()
                for name, needle in needles.items():
                    if needle in data:
                        found.add(name)
    return found


def migrated_to_head(d: Deployment, release: Path) -> str:
    """The database's Alembic revision is the release's newest migration."""
    heads = []
    for path in (release / "src/templator/migrations/versions").glob("*.py"):
        text = path.read_text()
        rev = re.search(r'^revision\s*(?::\s*str)?\s*=\s*"(\w+)"', text, re.M)
        if rev:
            heads.append(rev.group(1))
    current = d.sql("SELECT version_num FROM alembic_version")
    down = [
        re.search(r'^down_revision[^=]*=\s*"?(\w+)"?', p.read_text(), re.M)
        for p in (release / "src/templator/migrations/versions").glob("*.py")
    ]
    parents = {m.group(1) for m in down if m}
    head = sorted(set(heads) - parents)
    if [current] != head:
        raise CheckFailed(f"alembic_version {current}, the release's head {head}")
    return current
