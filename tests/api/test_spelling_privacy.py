"""Spelling correction draws only on the asking user's own templates (issue #21): with a
vocabulary built from everyone's, whether a misspelt word got corrected — and so what a
user's search found — told them whether another user's template contained a word."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from templator.models import UserRole
from tests.api.conftest import Caller, new_template

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
CONSONANTS = "bcdfghjklmnpqrstvwxz"


def _word() -> str:
    """A word no other test uses, that the english stemmer leaves as it is."""
    return "".join(secrets.choice(CONSONANTS) for _ in range(9))


async def _search(client: httpx.AsyncClient, caller: Caller, q: str) -> list[str]:
    answer = await client.get("/api/v1/templates", params={"q": q}, headers=caller.headers)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


async def test_another_users_private_word_does_not_change_what_a_search_finds(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    mine, theirs = await make_caller(), await make_caller()
    word = _word()
    own = await new_template(client, mine, name=f"Landing {word}")
    # Is there a template with `word + "x"` anywhere? Its owner alone may learn that.
    await new_template(client, theirs, name=f"Secret {word}x")

    found = await _search(client, mine, f"{word}x")

    # Spelt against my own words, "{word}x" is my "{word}": my template is found, as it
    # would be if the other template did not exist.
    assert found == [own]
    assert await _search(client, theirs, f"{word}x") != []  # theirs, by its exact word


async def test_admin_spelling_still_draws_on_every_template(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    admin = await make_caller(UserRole.ADMIN)
    someone = await make_caller()
    word = _word()
    tid = await new_template(client, someone, name=f"Banner {word}")
    assert tid in await _search(client, admin, f"{word}x")
