"""deploy/.env from deploy/.env.example: every empty secret generated, existing values kept."""

from __future__ import annotations

import os
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
_SECRET = re.compile(r"(_PASSWORD|_SECRET_KEY|_ACCESS_KEY|_TOKEN)$")
_ACCESS_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class SecretsReport:
    """What `write_env` did."""

    path: Path
    generated: list[str]
    kept: list[str]


def value_of(raw: str) -> str:
    """A dotenv value as docker compose reads it: quotes removed, or an inline comment cut."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return re.split(r"(?:^|\s+)#", raw, maxsplit=1)[0].strip()


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = _LINE.match(line.strip())
        if match:
            values[match["key"]] = value_of(match["value"])
    return values


def is_secret(key: str) -> bool:
    """Whether `key` names a credential the set-up generates."""
    return bool(_SECRET.search(key))


def generate(key: str) -> str:
    """A fresh value: S3 access keys look like AWS's (20 upper-case letters and digits),
    everything else is 32 random bytes, URL-safe base64 (no quoting needed anywhere)."""
    if key.endswith("_ACCESS_KEY"):
        return "".join(secrets.choice(_ACCESS_KEY_ALPHABET) for _ in range(20))
    return secrets.token_urlsafe(32)


def write_env(example: Path, target: Path) -> SecretsReport:
    """Write `target` from `example`, line by line, filling each empty secret with a value
    kept from an existing `target` or generated; the file is created with mode 0600."""
    existing = read_env(target) if target.exists() else {}
    generated: list[str] = []
    kept: list[str] = []
    lines: list[str] = []
    for line in example.read_text().splitlines():
        match = _LINE.match(line.strip())
        if not match:
            lines.append(line)
            continue
        key, default = match["key"], value_of(match["value"])
        if key in existing:
            value = existing[key]
            kept.append(key)
        elif is_secret(key) and not default:
            value = generate(key)
            generated.append(key)
        else:
            value = default
        lines.append(f"{key}={value}")
    for key, value in existing.items():  # lines the operator added stay
        if key not in {*generated, *kept}:
            lines.append(f"{key}={value}")
    missing = [k for k in (*generated, *kept) if is_secret(k) and not read_value(lines, k)]
    if missing:
        raise ValueError(f"empty secrets in {target}: {', '.join(missing)}")
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(tmp, target)
    write_secret_files(target.parent / "secrets", lines)
    return SecretsReport(target, generated, kept)


SECRET_FILES = {"MONITORING_TOKEN": "monitoring_token"}
"""Values compose hands to containers as secret files (deploy/secrets/NAME beside .env)."""


def write_secret_files(folder: Path, lines: list[str]) -> None:
    """Write each of SECRET_FILES' values into `folder` (0700): compose mounts each file
    into the containers that read it (`secrets:` of deploy/docker-compose.yml). A file is
    0644 since the containers' users differ; the folder keeps it private on the host."""
    folder.mkdir(mode=0o700, exist_ok=True)
    folder.chmod(0o700)
    for key, name in SECRET_FILES.items():
        tmp = folder / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as out:
            out.write(read_value(lines, key))
        os.replace(tmp, folder / name)


def read_value(lines: list[str], key: str) -> str:
    """The value of `key` among dotenv `lines` ('' when absent)."""
    for line in lines:
        match = _LINE.match(line.strip())
        if match and match["key"] == key:
            return value_of(match["value"])
    return ""
