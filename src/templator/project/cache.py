"""The project domain's cache keys: the first page of each user's project list."""

from __future__ import annotations

from templator.cache import Cache


def list_key(cache: Cache, user_id: str) -> str:
    """Cache key of a user's first page of projects."""
    return cache.key("projects", user_id)
