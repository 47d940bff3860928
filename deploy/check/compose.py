"""One rendered deployment, driven through docker-compose as an operator would."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from engine import CheckFailed, Engine, run
from render import Ports

LONG_RUNNING = ("postgres", "redis", "seaweedfs", "api", "pgadmin", "prometheus")


@dataclass
class Deployment:
    """docker-compose on the rendered file, project `project`, secrets from `env_file`."""

    engine: Engine
    file: Path
    env_file: Path
    project: str
    ports: Ports

    def compose(
        self,
        *args: str,
        timeout: float = 900,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> str:
        """Run a docker-compose command; its standard output (`extra_env` for `-e NAME`)."""
        cmd = ["docker-compose", "--ansi", "never", "-p", self.project, "-f", str(self.file)]
        cmd += ["--env-file", str(self.env_file), *args]
        env = {**self.engine.env, **(extra_env or {})}
        return run(cmd, env=env, timeout=timeout, check=check).stdout

    def docker(self, *args: str, timeout: float = 300, check: bool = True) -> str:
        """Run a docker command against the check's engine; its standard output."""
        return run(["docker", *args], env=self.engine.env, timeout=timeout, check=check).stdout

    def exec(self, service: str, *args: str, user: str | None = None, timeout: float = 300) -> str:
        """A command in a running service's container, through `docker exec`: docker-compose
        1.29's `exec -T` now and then returns a quick command's output empty (seen on
        a `psql -At` count after the point-in-time restore)."""
        extra = ["-u", user] if user else []
        return self.docker("exec", *extra, self.container(service), *args, timeout=timeout)

    def container(self, service: str) -> str:
        """The id of the service's container."""
        found = self.compose("ps", "-q", service).strip()
        if not found:
            raise CheckFailed(f"no container for {service}")
        return found.splitlines()[0]

    def inspect(self, service: str) -> dict[str, Any]:
        """docker inspect of the service's container."""
        data: list[dict[str, Any]] = json.loads(self.docker("inspect", self.container(service)))
        return data[0]

    def health(self, service: str) -> str:
        """healthy / unhealthy / starting, or the state of a container without a check."""
        state = self.inspect(service)["State"]
        return str(state.get("Health", {}).get("Status") or state["Status"])

    def wait_healthy(
        self, services: tuple[str, ...] = LONG_RUNNING, *, timeout: float = 300
    ) -> dict[str, str]:
        """Until every service is healthy; their states."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {s: self.health(s) for s in services}
            if all(v == "healthy" for v in states.values()):
                return states
            time.sleep(2)
        raise CheckFailed(f"not healthy within {timeout:g}s: {states}")

    def sql(self, query: str, *, database: str = "templator") -> str:
        """A query as the superuser over the server's socket (psql -At)."""
        return self.exec(
            "postgres",
            "psql",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "postgres",
            "-d",
            database,
            "-c",
            query,
            user="postgres",
        ).strip()

    @property
    def api(self) -> str:
        """The API's published base URL."""
        return f"http://127.0.0.1:{self.ports.api}"

    def monitoring_headers(self) -> dict[str, str]:
        """The bearer token /metrics and /health/ready require (MONITORING_TOKEN of the
        deployment's .env), as headers; none when it sets none."""
        for line in self.env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "MONITORING_TOKEN" and value.strip():
                return {"Authorization": f"Bearer {value.strip()}"}
        return {}

    def ready(self, *, timeout: float = 5) -> httpx.Response:
        """GET /health/ready through the published port, with the monitoring token."""
        return httpx.get(
            f"{self.api}/health/ready", headers=self.monitoring_headers(), timeout=timeout
        )

    def wait_ready(self, *, timeout: float) -> dict[str, Any]:
        """Until /health/ready answers 200; its body."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = self.ready()
                if answer.status_code == 200:
                    body: dict[str, Any] = answer.json()
                    return body
                last = f"{answer.status_code} {answer.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1)
        raise CheckFailed(f"/health/ready not 200 within {timeout:g}s: {last}")
