"""What `docker compose config` does to our compose file, without Docker: YAML (with its
merge keys) first, then ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
${VAR?error}, ${VAR:+alt}, $VAR and $$ in every string, as the compose spec defines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A variable the file requires is unset (or empty, for the ':' forms)."""


def variables(path: Path) -> set[str]:
    """Every variable name a compose file's values refer to (comments are not values)."""
    found: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, str):
            for match in _TOKEN.finditer(node):
                if not match["escaped"]:
                    found.add(match["name"] or match["bare"])
                    collect(match["arg"] or "")
        elif isinstance(node, list):
            for item in node:
                collect(item)
        elif isinstance(node, dict):
            for value in node.values():
                collect(value)

    collect(yaml.safe_load(path.read_text()))
    return found


def interpolate(value: str, env: dict[str, str]) -> str:
    """One string, interpolated; a bare ${VAR} that is unset is an error here (compose
    would only warn and use ''), so the test finds every variable .env.example lacks."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        present = current is not None and (current != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return current if present and current is not None else interpolate(arg, env)
        if op in (":+", "+"):
            return interpolate(arg, env) if present else ""
        if not present or current is None:
            raise MissingVariable(f"{name}: {arg or 'not set'}")
        return current

    return _TOKEN.sub(substitute, value)


def _walk(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    return node


def render(path: Path, env: dict[str, str]) -> dict[str, Any]:
    """The compose file as compose would run it with `env`."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    rendered: dict[str, Any] = _walk(document, env)
    return rendered


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, list or mapping form, as strings."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {key: "" if value is None else str(value) for key, value in raw.items()}
