"""Statements shown to operators (dashboard, `templator db top`) never show a password."""

from __future__ import annotations

import pytest

from templator.monitoring.stores import redact_statement


@pytest.mark.parametrize(
    ("kept", "shown"),
    [
        ("ALTER ROLE \"app\" PASSWORD 'Q38JUZ/x+y'", "ALTER ROLE \"app\" PASSWORD '…'"),
        (
            "alter user a with encrypted password 'it''s'",
            "alter user a with encrypted password '…'",
        ),
        ("CREATE ROLE r LOGIN PASSWORD $p$s3cret$p$", "CREATE ROLE r LOGIN PASSWORD '…'"),
        (
            "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'pw')",
            "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password '…')",
        ),
        ("SELECT id FROM users WHERE email = $1", "SELECT id FROM users WHERE email = $1"),
    ],
)
def test_secret_literals_are_replaced_and_the_rest_kept(kept: str, shown: str) -> None:
    assert redact_statement(kept) == shown
