"""The cache signing key: configured, from a file, from the local stack, or random."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from templator.config import Settings
from templator.signing import SigningKeyUnusable, cache_signing_key


def _settings(**values: object) -> Settings:
    # No key from the environment: another test in this process may have set one.
    base: dict[str, object] = {"cache_signing_key": None}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[arg-type, call-arg]


def test_a_configured_key_wins_and_processes_with_it_agree(tmp_path: Path) -> None:
    key = "k" * 40
    stack_file = tmp_path / "stack.key"
    stack_file.write_text("s" * 40)
    first = cache_signing_key(_settings(cache_signing_key=key), stack_key_file=stack_file)
    second = cache_signing_key(_settings(cache_signing_key=key))
    assert first == second and first is not None and len(first) == 32


def test_a_key_file_or_the_stacks_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cache.key"
    path.write_text("f" * 40 + "\n")
    from_file = cache_signing_key(_settings(cache_signing_key_file=path))
    from_stack = cache_signing_key(_settings(), stack_key_file=path)
    assert from_file == from_stack is not None
    assert cache_signing_key(_settings()) is None  # the cache makes a random key of its own


def test_a_short_key_or_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        _settings(cache_signing_key="short")
    with pytest.raises(SigningKeyUnusable, match="CACHE_SIGNING_KEY_FILE"):
        cache_signing_key(_settings(cache_signing_key_file=tmp_path / "missing.key"))
    short = tmp_path / "short.key"
    short.write_text("abc")
    with pytest.raises(SigningKeyUnusable, match="shorter than 32"):
        cache_signing_key(_settings(cache_signing_key_file=short))
