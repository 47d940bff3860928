"""The template domain's cache keys: one entry per template (its JSON form plus `owner_id`)."""

from __future__ import annotations

from collections.abc import Iterable

from templator.cache import Cache


def template_key(cache: Cache, template_id: str) -> str:
    """Cache key of a template (its JSON form plus `owner_id`)."""
    return cache.key("template", template_id)


def template_keys(cache: Cache, template_ids: Iterable[str]) -> list[str]:
    """Cache keys of these templates, for a cascade to drop after its commit."""
    return [template_key(cache, template_id) for template_id in template_ids]
