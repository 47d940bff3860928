"""Child-process helpers shared by whatever starts a server or a tool as a child: the
local stack's servers (`templator.dev.localstack`), pgBackRest (`backup/pgbackrest.py`)
and pgAdmin (`pgadmin/server.py`)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
        return prctl
    return None


# Resolved in the parent: a forked child must not load libraries before it execs.
_prctl = _load_prctl()
_SPAWNING_THREADS: set[int] = set()
"""Threads other than the main one that outlive every child they spawn (see below)."""


def spawns_children_for_life() -> None:
    """Declare that the calling thread lives as long as the children it spawns (the local
    stack's supervisor, which restarts servers until the stack stops): `die_with_parent`
    then applies to its children too, which otherwise lose it off the main thread."""
    _SPAWNING_THREADS.add(threading.get_ident())


def die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send `sig` to the child when its parent dies.

    Best effort only; for the local stack's servers the real guarantee against orphans is
    the stale-stack sweep that every `LocalStack.start()` runs before it starts anything.
    Linux sends the signal when the spawning *thread* exits, so off the main thread this
    returns None (no preexec_fn) unless that thread declared it outlives its children
    (`spawns_children_for_life`): a server spawned from a short-lived thread would
    otherwise die with that thread. The child only makes one libc call, resolved
    beforehand in the parent: no import, no lock.
    """
    prctl = _prctl
    if prctl is None:
        return None
    if threading.current_thread() is not threading.main_thread() and (
        threading.get_ident() not in _SPAWNING_THREADS
    ):
        return None

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def drop_privileges_user() -> str | None:
    """The account servers that refuse root (PostgreSQL) run as, or None when not root."""
    return "postgres" if os.geteuid() == 0 else None
