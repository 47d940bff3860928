"""User errors."""

from __future__ import annotations

from templator.exceptions import Conflict, NotFound


class UserNotFound(NotFound):
    """No user with that id or email."""

    code = "user_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"user {key!r} does not exist", field="user_id")


class EmailTaken(Conflict):
    """Another user has this email."""

    code = "email_taken"

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists", field="email")
