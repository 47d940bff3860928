"""Each domain repository stands on kit/repository.py and uses one of its two statement
styles (docs/architecture.md, "Data access"): text SQL on the driver connection, or
SQLAlchemy Core — never both, never the ORM's unit of work, never asyncpg.

Read from the source with `ast`, like tests/test_architecture.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_architecture import DOMAINS, SRC

TEXT = {"fetch_one", "fetch_all", "fetch_json_rows", "run"}
"""The base's text-SQL helpers."""
CORE = {"one", "all", "scalar", "scalars", "execute", "json_rows", "lock_ids"}
"""The base's SQLAlchemy Core helpers."""
ORM = {"add", "add_all", "get", "flush", "merge", "refresh", "scalars", "execute"}
"""What a repository would call on the session itself to use the ORM (or bypass the base)."""

REPOSITORIES = sorted(
    path for domain in DOMAINS if (path := SRC / "templator" / domain / "repository.py").exists()
)


def styles(tree: ast.Module) -> set[str]:
    """Which statement styles a repository module uses: the base's helpers it calls on
    `self`, `driver_connection` (text SQL on psycopg itself: COPY, an unprepared search),
    and (for Core) what it imports from SQLAlchemy to build statements."""
    found: set[str] = set()
    for node in ast.walk(tree):
        call = isinstance(node, ast.Call)
        if call and isinstance(node.func, ast.Name) and node.func.id == "driver_connection":
            found.add("text")  # the psycopg connection itself
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "self":
                if node.func.attr in TEXT:
                    found.add("text")
                elif node.func.attr in CORE:
                    found.add("core")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found.add("core")
    return found


def orm_calls(tree: ast.Module) -> list[str]:
    """`self.session.<ORM method>(…)` calls: the ORM's unit of work, not the base."""
    return [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ORM
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "session"
    ]


def asyncpg_imports(tree: ast.Module) -> list[str]:
    """Imports of asyncpg (the read pool is infrastructure, not a repository's)."""
    names = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    return [name for name in names if name.split(".")[0] == "asyncpg"]


@pytest.mark.parametrize("path", REPOSITORIES, ids=lambda p: p.parent.name)
def test_a_domain_repository_uses_one_statement_style(path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert len(styles(tree)) == 1, f"{path.parent.name}/repository.py mixes {styles(tree)}"
    assert not orm_calls(tree), f"{path.parent.name}/repository.py uses the ORM session"
    assert not asyncpg_imports(tree), f"{path.parent.name}/repository.py imports asyncpg"


def test_a_mixed_repository_is_reported() -> None:
    mixed = ast.parse(
        "from sqlalchemy import select\n"
        "class R(Repository):\n"
        "    async def a(self):\n"
        "        return await self.fetch_one('SELECT 1', ())\n"
        "    async def b(self):\n"
        "        return await self.one(select(1))\n"
    )
    assert styles(mixed) == {"text", "core"}


def test_an_orm_repository_is_reported() -> None:
    orm = ast.parse(
        "class R(Repository):\n"
        "    async def a(self, row):\n"
        "        self.session.add(row)\n"
        "        await self.session.flush()\n"
    )
    assert orm_calls(orm) == ["add", "flush"]
