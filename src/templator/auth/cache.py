"""The token domain's cache keys: the record (user, role, hash, dates) of each token prefix."""

from __future__ import annotations

from collections.abc import Iterable

from templator.cache import Cache


def record_key(cache: Cache, prefix: str) -> str:
    """Cache key of the record of the token with this prefix."""
    return cache.key("token", prefix)


def record_keys(cache: Cache, prefixes: Iterable[str]) -> list[str]:
    """Cache keys of these tokens' records, for a cascade to drop after its commit."""
    return [record_key(cache, prefix) for prefix in prefixes]
