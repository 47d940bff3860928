"""Every use of a private part of a library, in one place.

Each hook here exists because no public API does the job and a measurement says the job
is worth doing (docs/architecture.md, "Private hooks", lists each with its benchmark).
`tests/test_private_apis.py` exercises every one of them against the installed
libraries, so an upgrade that moves or renames one fails there, by name, instead of
somewhere in production. Nothing else in the code base may touch a library's private
attribute (`tests/test_architecture.py` checks).
"""

from __future__ import annotations

import socket
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.abc import PQGen

RV = TypeVar("RV")

# psycopg raises this (an OperationalError) from `AsyncConnection.wait` when its
# `timeout` passes; it is the only way to tell our bound from a real server error.
PsycopgWaitTimeout: type[psycopg.OperationalError] = pg_errors._WaitTimeout


class BoundedWaitConnection(psycopg.AsyncConnection[Any]):
    """psycopg's AsyncConnection with a bound on every wait for the server.

    Every statement, commit and rollback of an async psycopg connection goes through
    `AsyncConnection.wait(gen, interval, timeout)` — documented in psycopg's source, not
    in its reference, and so private. Overriding it is the one place where a bound can
    apply to every round trip without cancelling the task (which makes psycopg send a
    cancel request to a hung server and wait up to ten seconds for it).
    Subclasses say the bound (`wait_bound`) and what a missed bound raises (`timed_out`);
    the connection is closed first, since its state is unknown.
    """

    def wait_bound(self) -> float | None:
        """Seconds the next wait may take (None: unbounded)."""
        return None

    def timed_out(self, bound: float) -> Exception:
        """The error a wait raises when the server has not answered within `bound`."""
        return psycopg.OperationalError(f"no answer within {bound:g}s")

    async def wait(self, gen: PQGen[RV], interval: float = 0.1, timeout: float | None = None) -> RV:
        bound = self.wait_bound()
        if timeout is not None and (bound is None or timeout < bound):
            bound = timeout
        if bound is None:
            return await super().wait(gen, interval, timeout)
        try:
            return await super().wait(gen, interval, bound)
        except PsycopgWaitTimeout as exc:
            self.pgconn.finish()
            raise self.timed_out(bound) from exc


def asyncpg_socket(conn: Any) -> socket.socket | None:
    """The socket under an asyncpg connection, to set TCP keepalives on (asyncpg has no
    parameter for them and no public accessor for its transport)."""
    transport = getattr(conn, "_transport", None)
    if transport is None:
        return None
    sock: socket.socket | None = transport.get_extra_info("socket")
    return sock
