"""Token and role errors."""

from __future__ import annotations

from templator.exceptions import Forbidden, NotFound


class TokenNotFound(NotFound):
    """No token with that id (or not the caller's)."""

    code = "token_not_found"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id!r} does not exist", field="token_id")


class AdminRequired(Forbidden):
    """Only an ADMIN may do this."""

    code = "admin_required"

    def __init__(self) -> None:
        super().__init__("this needs the ADMIN role")


class ScopeForbidden(Forbidden):
    """The token is limited to some routes (its scopes) and this is not one of them."""

    code = "scope_forbidden"
