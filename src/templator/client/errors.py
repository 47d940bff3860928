"""What the client raises: the API's problem+json as a typed error with its stable code."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """An answer of 400 or more: `status`, the problem's stable `code`, `detail`, `field`."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.problem = problem or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error a response describes (problem+json, or its bare status)."""
        problem: dict[str, Any] = {}
        try:
            body = response.json()
            if isinstance(body, dict):
                problem = body
        except ValueError:
            pass
        code = str(problem.get("code") or f"http_{response.status_code}")
        detail = str(problem.get("detail") or response.reason_phrase or "")
        field = problem.get("field")
        return cls(
            response.status_code,
            code,
            detail,
            field=str(field) if field is not None else None,
            problem=problem,
        )


class ApiUnavailable(ApiError):
    """The API could not be reached (or kept answering 5xx) through every retry."""

    def __init__(self, detail: str) -> None:
        super().__init__(0, "api_unreachable", detail)
