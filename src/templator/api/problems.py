"""RFC 9457 problem details: one error format for every error the API returns."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import Counter
from psycopg.errors import QueryCanceled
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from templator import postgres
from templator.exceptions import DatabaseUnavailable, ServiceUnavailable, TemplatorError

log = logging.getLogger("templator.api")

STORE_UNAVAILABLE = Counter(
    "templator_store_unavailable_total",
    "Requests answered 503 because a store they needed was unavailable",
    ["store"],
)

PROBLEM_JSON = "application/problem+json"

TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}
"""RFC 9110's names where Python's HTTPStatus still has the older RFC 7231 phrases."""
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
"""Codes of the errors Starlette raises itself (no route, wrong method, body limits)."""


def title_of(status: int) -> str:
    """The one title every problem of this status carries."""
    return TITLES.get(status) or HTTPStatus(status).phrase


class InvalidParam(BaseModel):
    """One invalid field of a request."""

    name: str = Field(description="Dotted path of the field, e.g. body.hubspot_config.meta.label")
    reason: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = Field(default=None, description="Stable machine-readable error code")
    field: str | None = Field(default=None, description="The field the error is about")
    request_id: str | None = None
    invalid_params: list[InvalidParam] | None = None


def problem_response(
    request: Request,
    *,
    status: int,
    detail: str | None,
    code: str | None = None,
    field: str | None = None,
    invalid: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build an application/problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title_of(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "field": field,
        "request_id": getattr(request.state, "request_id", None),
    }
    if invalid:
        body["invalid_params"] = invalid
    return Response(
        orjson.dumps({k: v for k, v in body.items() if v is not None}),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def internal_error_body(path: str, request_id: str | None) -> bytes:
    """The problem every unexpected error answers: nothing internal, only the request id."""
    body = {
        "type": "about:blank",
        "title": title_of(500),
        "status": 500,
        "detail": "internal error; see the server log",
        "instance": path,
        "code": "internal_error",
        "request_id": request_id,
    }
    return orjson.dumps({k: v for k, v in body.items() if v is not None})


PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def responses_for(*items: int | type[TemplatorError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses=` entries for the problems an endpoint can return.

    Give a status for the generic problems, or the domain error classes: their codes are
    listed by name under their status (`x-problem-codes` and the description). What every
    operation can answer (401, 422, 429, 503…) is added by `api.contract`.
    """
    codes: dict[int, list[str]] = {}
    for item in items:
        status = item if isinstance(item, int) else item.status_code
        listed = codes.setdefault(status, [])
        if not isinstance(item, int) and item.code not in listed:
            listed.append(item.code)
    return {
        status: {
            "description": title_of(status),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
            "x-problem-codes": listed,
        }
        for status, listed in codes.items()
    }


def _method_index(app: Any) -> list[tuple[re.Pattern[str], bool, list[str]]]:
    """(path regex, is literal, methods) of every documented path, built once per app."""
    index: list[tuple[re.Pattern[str], bool, list[str]]] | None = getattr(
        app.state, "method_index", None
    )
    if index is None:
        index = []
        for path, operations in app.openapi().get("paths", {}).items():
            regex = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            methods = sorted(m.upper() for m in operations)
            if "GET" in methods:
                methods.append("HEAD")
            index.append((regex, "{" not in path, methods))
        app.state.method_index = index
    return index


def allowed_methods(request: Request) -> list[str] | None:
    """The methods the request's path has, as `Allow` lists them (None: not documented).

    A path that is a route of its own (`/users/me`, `/templates/from-session`) has only
    its own methods, even where a parameterised route (`/users/{user_id}`) also matches.
    """
    path = request.url.path
    matches = [
        (literal, m) for regex, literal, m in _method_index(request.app) if regex.match(path)
    ]
    if not matches:
        return None
    literal = [m for is_literal, m in matches if is_literal]
    return sorted(set().union(*(literal or [m for _, m in matches])))


def _method_not_allowed(request: Request, allowed: list[str]) -> Response:
    return problem_response(
        request,
        status=405,
        detail=f"{request.method} is not allowed here; allowed: {', '.join(allowed)}",
        code="method_not_allowed",
        headers={"Allow": ", ".join(allowed)},
    )


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Turn every error into problem+json; nothing internal ever reaches a client."""

    @app.exception_handler(TemplatorError)
    async def _platform(request: Request, exc: TemplatorError) -> Response:
        headers = None
        if isinstance(exc, ServiceUnavailable):
            headers = {"Retry-After": str(exc.retry_after)}
            if exc.store is not None:
                STORE_UNAVAILABLE.labels(exc.store).inc()
        return problem_response(
            request,
            status=exc.status_code,
            detail=exc.message,
            code=exc.code,
            field=exc.field,
            headers={**(getattr(exc, "headers", None) or {}), **(headers or {})} or None,
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg.InterfaceError)
    async def _database(request: Request, exc: Exception) -> Response:
        # SQLAlchemy wraps the driver's errors; a statement on the driver connection
        # (kit/raw.py, the driver pool) raises them as they are.
        if not postgres.is_unavailable(exc):
            return await _unexpected(request, exc)
        # An outage, not a bug: one line per failed request, no traceback.
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            postgres.describe_failure(exc),
        )
        STORE_UNAVAILABLE.labels("postgres").inc()
        settings = getattr(request.app.state, "settings", None)
        retry_after = settings.db_retry_after if settings is not None else 2
        if isinstance(exc.orig if isinstance(exc, DBAPIError) else exc, QueryCanceled):
            what = "the database did not finish the statement within its timeout"
        else:
            what = "the database is unavailable (down, restarting or not answering)"
        return problem_response(
            request,
            status=503,
            detail=f"{what}; retry in {retry_after}s",
            code=DatabaseUnavailable.code,
            headers={"Retry-After": str(retry_after)},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        allowed = allowed_methods(request)
        if allowed is not None and request.method not in allowed:
            # PATCH /users/me reached PATCH /users/{user_id} with user_id "me": the path
            # exists, the method does not.
            return _method_not_allowed(request, allowed)
        invalid = [
            {"name": _loc(err.get("loc", ())), "reason": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        first = invalid[0] if invalid else {"name": "", "reason": "invalid request"}
        status = 400 if any(e.get("type") == "json_invalid" for e in exc.errors()) else 422
        return problem_response(
            request,
            status=status,
            detail=f"{first['name']}: {first['reason']}",
            code="malformed_json" if status == 400 else "validation_failed",
            field=first["name"],
            invalid=invalid,
        )

    @app.exception_handler(ValidationError)
    async def _model(request: Request, exc: ValidationError) -> Response:
        # A model built inside an endpoint (e.g. from query parameters) refused its input.
        invalid = [
            {"name": _loc(err.get("loc", ())), "reason": str(err.get("msg", "invalid"))}
            for err in exc.errors()
        ]
        first = invalid[0] if invalid else {"name": "", "reason": "invalid request"}
        return problem_response(
            request,
            status=422,
            detail=f"{first['name']}: {first['reason']}",
            code="validation_failed",
            field=first["name"],
            invalid=invalid,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        allowed = allowed_methods(request) if exc.status_code == 405 else None
        if allowed is not None:
            # Starlette's Allow names the methods of the first matching route only.
            return _method_not_allowed(request, allowed)
        return problem_response(
            request,
            status=exc.status_code,
            detail=str(exc.detail) if exc.detail else None,
            code=getattr(exc, "code", None) or HTTP_CODES.get(exc.status_code),
            headers=dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(PoolTimeout)
    async def _busy(request: Request, exc: PoolTimeout) -> Response:
        # Every pooled PostgreSQL connection stayed busy for DB_POOL_TIMEOUT seconds:
        # overload, not a bug — tell the client to come back, and say so in the log.
        log.warning("database pool exhausted on %s %s: %s", request.method, request.url.path, exc)
        return problem_response(
            request,
            status=503,
            detail="the server is busy (no database connection free); retry shortly",
            code="busy",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            request, status=500, detail="internal error; see the server log", code="internal_error"
        )
