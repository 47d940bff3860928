"""The AI-session domain's cache keys: each session's status and progress."""

from __future__ import annotations

from collections.abc import Iterable

from templator.cache import Cache


def state_key(cache: Cache, session_id: str) -> str:
    """Cache key of a session's status and progress."""
    return cache.key("session", session_id, "state")


def state_keys(cache: Cache, session_ids: Iterable[str]) -> list[str]:
    """Cache keys of these sessions' states, for a cascade to drop after its commit."""
    return [state_key(cache, session_id) for session_id in session_ids]
