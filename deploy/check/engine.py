"""The host side of `make deploy-check`: packages, a Docker engine, the firewall state.

What the check installs or starts it also undoes: a `dockerd` it started is stopped at the
end (its data root stays under var/deploy-check/ for the layer cache), and the iptables
rules, bridges and `ip_forward` that engine made are put back as they were.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = {"dockerd": "docker.io", "docker-compose": "docker-compose", "mmdebstrap": "mmdebstrap"}
"""Debian package of each command the check runs, installed only when it is missing."""

FIREWALL_TABLES = ("filter", "nat", "mangle", "raw")


class CheckFailed(Exception):
    """A step's proof did not hold; the message says what was seen."""


def run(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    check: bool = True,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, no shell), its output captured; fail with its tail."""
    try:
        result = subprocess.run(
            args,
            env=env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"{' '.join(args[:4])}… took more than {timeout:g}s") from exc
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise CheckFailed(f"{' '.join(args[:6])} exited {result.returncode}:\n{tail}")
    return result


def missing_packages() -> list[str]:
    """The Debian packages whose command is not on PATH."""
    return [pkg for cmd, pkg in PACKAGES.items() if shutil.which(cmd) is None]


def install_packages(packages: list[str]) -> None:
    """apt-get install the packages (the host's own apt sources)."""
    if os.geteuid() != 0:
        raise CheckFailed(f"need root to install {' '.join(packages)} (and to run dockerd)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env, timeout=600)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        env=env,
        timeout=1200,
    )


@dataclass
class FirewallState:
    """iptables dumps, network links and ip_forward as found before the engine started."""

    dumps: dict[str, str] = field(default_factory=dict)
    links: set[str] = field(default_factory=set)
    ip_forward: str = "0"

    @classmethod
    def capture(cls) -> FirewallState:
        """The state now."""
        dumps = {}
        for tool in ("iptables", "ip6tables"):
            if shutil.which(f"{tool}-save"):
                dumps[tool] = run([f"{tool}-save"], check=False).stdout
        return cls(dumps=dumps, links=_links(), ip_forward=_ip_forward())

    def restore(self) -> list[str]:
        """Put back what was captured; returns what differed and was undone."""
        undone = []
        for tool, before in self.dumps.items():
            now = run([f"{tool}-save"], check=False).stdout
            if _rules(now) == _rules(before):
                continue
            run([f"{tool}-restore"], input_text=_restore_script(before, now))
            undone.append(f"{tool} rules")
        for link in sorted(_links() - self.links):
            if link == "docker0" or link.startswith(("br-", "veth")):
                run(["ip", "link", "delete", link], check=False)
                undone.append(f"link {link}")
        if _ip_forward() != self.ip_forward:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self.ip_forward + "\n")
            undone.append(f"ip_forward={self.ip_forward}")
        return undone

    def differences(self) -> list[str]:
        """What still differs from the captured state (empty when restored)."""
        diff = []
        for tool, before in self.dumps.items():
            if _rules(run([f"{tool}-save"], check=False).stdout) != _rules(before):
                diff.append(f"{tool} rules")
        extra = {n for n in _links() - self.links if n == "docker0" or n.startswith("br-")}
        diff += [f"link {n}" for n in sorted(extra)]
        if _ip_forward() != self.ip_forward:
            diff.append("ip_forward")
        return diff


def _rules(dump: str) -> list[str]:
    """The rule and chain lines of a dump (comments and counters aside), empty tables out."""
    lines = []
    for line in dump.splitlines():
        if line.startswith("#") or line == "COMMIT" or line.startswith("*"):
            continue
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if policy == "ACCEPT" or policy == "-":
                if policy == "-":
                    lines.append(f"chain {name}")
                continue
            lines.append(f"policy {name} {policy}")
            continue
        lines.append(line)
    return sorted(lines)


def _restore_script(before: str, now: str) -> str:
    """An iptables-restore input: each table as it was, tables that were absent emptied."""
    tables_before = _tables(before)
    out = []
    for table in sorted(set(_tables(now)) | set(tables_before)):
        if table in tables_before:
            out.append(tables_before[table])
            continue
        chains = {
            "filter": ("INPUT", "FORWARD", "OUTPUT"),
            "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
            "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
            "raw": ("PREROUTING", "OUTPUT"),
        }.get(table, ())
        out.append("\n".join([f"*{table}", *(f":{c} ACCEPT [0:0]" for c in chains), "COMMIT"]))
    return "\n".join(out) + "\n"


def _tables(dump: str) -> dict[str, str]:
    tables: dict[str, str] = {}
    current: list[str] = []
    for line in dump.splitlines():
        if line.startswith("*"):
            current = [line]
        elif current:
            current.append(line)
            if line == "COMMIT":
                tables[current[0][1:]] = "\n".join(current)
                current = []
    return tables


def _links() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


def _ip_forward() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


@dataclass
class Engine:
    """A Docker engine to talk to: the host's own, or one this check started."""

    host: str
    started: subprocess.Popen[bytes] | None = None
    firewall: FirewallState | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker and docker-compose commands."""
        return {**os.environ, "DOCKER_HOST": self.host, "COMPOSE_INTERACTIVE_NO_CLI": "1"}

    def answers(self) -> bool:
        """Whether the engine answers `docker version`."""
        return run(["docker", "version"], env=self.env, check=False, timeout=20).returncode == 0


def find_or_start_engine(root: Path, *, timeout: float = 90) -> Engine:
    """The engine at DOCKER_HOST or the default socket if it answers; else our own dockerd."""
    for host in filter(None, [os.environ.get("DOCKER_HOST"), "unix:///var/run/docker.sock"]):
        engine = Engine(host=host)
        if engine.answers():
            return engine
    root.mkdir(parents=True, exist_ok=True)
    _stop_leftover(root / "dockerd.pid", timeout=timeout)
    firewall = FirewallState.capture()
    sock = root / "docker.sock"
    engine = Engine(host=f"unix://{sock}", firewall=firewall)
    log = (root / "dockerd.log").open("ab")
    engine.started = subprocess.Popen(
        [
            "dockerd",
            f"--data-root={root / 'docker'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host={engine.host}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.started.poll() is not None:
            raise CheckFailed(f"dockerd exited {engine.started.returncode}: see {root}/dockerd.log")
        if sock.exists() and engine.answers():
            return engine
        time.sleep(1)
    stop_engine(engine)
    raise CheckFailed(f"dockerd did not answer within {timeout:g}s: see {root}/dockerd.log")


def _stop_leftover(pidfile: Path, *, timeout: float) -> None:
    """Stop the dockerd a killed earlier run left on this data root (it holds its lock)."""
    try:
        pid = int(pidfile.read_text().strip())
        if Path(f"/proc/{pid}/comm").read_text().strip() != "dockerd":
            return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if Path(f"/proc/{pid}").exists():
        raise CheckFailed(f"the dockerd of an earlier run (pid {pid}) did not stop")


def stop_engine(engine: Engine, *, timeout: float = 60) -> list[str]:
    """Stop the dockerd this check started and undo its network changes; what was undone."""
    if engine.started is None:
        return []
    if engine.started.poll() is None:
        engine.started.send_signal(signal.SIGTERM)
        try:
            engine.started.wait(timeout)
        except subprocess.TimeoutExpired:
            engine.started.kill()
            engine.started.wait()
    undone = ["dockerd stopped"]
    if engine.firewall is not None:
        undone += engine.firewall.restore()
        left = engine.firewall.differences()
        if left:
            raise CheckFailed(f"the host's network state still differs: {', '.join(left)}")
    return undone
