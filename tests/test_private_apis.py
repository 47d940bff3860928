"""Every private hook of `templator/private_apis.py`, exercised against the installed
libraries: an upgrade that moves or renames one fails here, by name. And no module
outside that one reaches into a library's private attributes or modules."""

from __future__ import annotations

import ast
import inspect
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from templator import private_apis
from templator.config import ProcessRole, Settings
from templator.postgres import MeteredQueuePool, create_engine, pool_stats

SRC = Path(__file__).resolve().parent.parent / "src" / "templator"
ADAPTER = SRC / "private_apis.py"

# Underscore names that are public API: SQLAlchemy's Row._mapping (named so to stay out
# of the columns' way), namedtuple's own methods, os._exit.
PUBLIC_UNDERSCORED = {"_mapping", "_replace", "_fields", "_asdict", "_make", "_exit"}


def _libpq_url(settings: Settings) -> str:
    assert settings.database_url
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


# --- psycopg: AsyncConnection.wait and errors._WaitTimeout ------------------------------


def test_psycopg_wait_still_takes_a_generator_an_interval_and_a_timeout() -> None:
    parameters = list(inspect.signature(psycopg.AsyncConnection.wait).parameters)
    assert parameters == ["self", "gen", "interval", "timeout"]
    assert issubclass(private_apis.PsycopgWaitTimeout, psycopg.OperationalError)


class _Bounded(private_apis.BoundedWaitConnection):
    def wait_bound(self) -> float | None:
        return 0.3

    def timed_out(self, bound: float) -> Exception:
        return TimeoutError(f"bounded at {bound}")


async def test_a_bounded_wait_closes_the_connection_and_raises_the_subclass_error(
    settings: Settings,
) -> None:
    conn = await _Bounded.connect(_libpq_url(settings), autocommit=True)
    try:
        assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
        with pytest.raises(TimeoutError, match=r"bounded at 0\.3"):
            await conn.execute("SELECT pg_sleep(3)")
        assert conn.closed
    finally:
        await conn.close()


# --- asyncpg: the connection's transport -------------------------------------------------


async def test_the_socket_under_an_asyncpg_connection_is_reachable(settings: Settings) -> None:
    conn = await asyncpg.connect(_libpq_url(settings))
    try:
        sock = private_apis.asyncpg_socket(conn)
        assert sock is not None  # asyncio's TransportSocket: socket options, no I/O
        assert sock.family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
    finally:
        await conn.close()


# --- SQLAlchemy: the metered pool uses public API only -----------------------------------


async def test_the_metered_pool_counts_a_waiting_checkout_and_its_timeout(
    settings: Settings,
) -> None:
    conf = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.5}
    )
    assert settings.database_url
    engine = create_engine(conf, url=settings.database_url, role=ProcessRole.TEST)
    pool = engine.pool
    assert isinstance(pool, MeteredQueuePool)
    try:
        async with engine.connect():
            assert pool_stats(engine)["checked_out"] == 1
            with pytest.raises(PoolTimeout):
                async with engine.connect():
                    pass
            assert pool.timeouts == 1
            assert pool.waiting == 0  # the waiter gave up and is no longer counted
        assert pool_stats(engine) | {"max_overflow": 0} == pool_stats(engine)
    finally:
        await engine.dispose()


# --- nothing else touches a library's private parts --------------------------------------


def _private_uses(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    own = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__") or node.attr in PUBLIC_UNDERSCORED:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in own:
                continue
            yield f"{path.relative_to(SRC)}:{node.lineno}: .{node.attr}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("templator") and any(
                part.startswith("_") and not part.startswith("__")
                for part in node.module.split(".")
            ):
                yield f"{path.relative_to(SRC)}:{node.lineno}: from {node.module}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            name = str(node.args[1].value)
            if name.startswith("_") and not name.startswith("__"):
                yield f"{path.relative_to(SRC)}:{node.lineno}: getattr {name}"


def _own_private_names() -> set[str]:
    """Underscored names our own modules define (module-level functions, classes,
    constants, methods): using those across our modules is not a library hook."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        names.add(target.id)
                    elif isinstance(target, ast.Attribute):
                        names.add(target.attr)
    return {name for name in names if name.startswith("_")}


def test_only_the_adapter_reaches_into_a_librarys_private_parts() -> None:
    own = _own_private_names()
    found = [
        use
        for path in sorted(SRC.rglob("*.py"))
        if path != ADAPTER
        for use in _private_uses(path)
        if use.rsplit(" ", 1)[-1].lstrip(".") not in own
    ]
    assert not found, (
        "use templator/private_apis.py (and list it in docs/architecture.md):\n" + "\n".join(found)
    )
