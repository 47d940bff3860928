"""The test variant of a release's deploy/docker-compose.yml, written under var/deploy-check/.

Changed from the operator's file, and nothing else: the top-level `name:` is dropped (the
project is given with `-p`; Debian's docker-compose 1.29 does not know the key); every
upstream image is its local stand-in; our own images build with BASE_IMAGE/PYTHON_IMAGE
pointing at stand-ins; every published port is a free loopback port; relative paths are
made absolute (the file lives elsewhere) and the secrets come from the check's own .env.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from images import BASE, PYTHON, STAND_INS


@dataclass(frozen=True)
class Ports:
    """The host ports (127.0.0.1) of the published services."""

    api: int
    s3: int
    pgadmin: int
    prometheus: int

    @classmethod
    def free(cls) -> Ports:
        """Four ports nothing listens on now (the kernel picks them)."""
        sockets = [socket.socket() for _ in range(4)]
        try:
            for s in sockets:
                s.bind(("127.0.0.1", 0))
            api, s3, pgadmin, prometheus = (s.getsockname()[1] for s in sockets)
        finally:
            for s in sockets:
                s.close()
        return cls(api=api, s3=s3, pgadmin=pgadmin, prometheus=prometheus)


PUBLISHED = {"api": "api", "seaweedfs": "s3", "pgadmin": "pgadmin", "prometheus": "prometheus"}


def render(
    release: Path, out: Path, *, ports: Ports, postgres_context: Path, secrets_dir: Path
) -> Path:
    """Write the variant of `release`/deploy/docker-compose.yml to `out`; its path.

    `postgres_context` is the folder of the PostgreSQL image to build: the release's own
    when its Dockerfile takes BASE_IMAGE, else (an older release, built on Alpine's
    repository) the current one — the data volume is the same either way.
    """
    deploy = release / "deploy"
    doc: dict[str, Any] = yaml.safe_load((deploy / "docker-compose.yml").read_text())
    doc.pop("name", None)
    for name, service in doc["services"].items():
        _absolute_paths(service, deploy)
        if name in STAND_INS:
            service["image"] = f"templator-check/{name}"
        if name == "postgres":
            service["build"] = {"context": str(postgres_context), "args": {"BASE_IMAGE": BASE}}
        elif "build" in service:
            service["build"]["args"] = {"PYTHON_IMAGE": PYTHON}
        if name in PUBLISHED:
            port = getattr(ports, PUBLISHED[name])
            service["ports"] = [
                re.sub(r"^127\.0\.0\.1:\d+:", f"127.0.0.1:{port}:", p) for p in service["ports"]
            ]
    for name, secret in (doc.get("secrets") or {}).items():
        if "file" in secret:  # written by `templator deploy secrets` beside the check's .env
            secret["file"] = str(secrets_dir / name)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _absolute_paths(service: dict[str, Any], deploy: Path) -> None:
    build = service.get("build")
    if isinstance(build, dict) and "context" in build:
        build["context"] = str((deploy / build["context"]).resolve())
    service["env_file"] = [str((deploy / f).resolve()) for f in service.get("env_file", [])]
    if not service["env_file"]:
        del service["env_file"]
    volumes = []
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        if source.startswith("./"):
            source = str((deploy / source).resolve())
        volumes.append(f"{source}:{rest}")
    if volumes:
        service["volumes"] = volumes
