"""The hottest read, `GET /api/v1/templates/{id}`, answered in one round trip.

Measured (docs/benchmarks.md): the FastAPI route spends most of its time in routing,
dependency injection, sessions and a second round trip for the token, not in work of
its own. This ASGI layer sits in front of the router and answers only the cases it can
prove, with the same functions and bytes as the route:

* Redis up: a well-formed bearer token whose record is cached, that `verify` accepts,
  and a cached template that `may_read` allows. One MGET fetches both (and their
  generations, which their seals are checked against: see `cache.py`).
* Redis unavailable (every read would go to PostgreSQL): the token's lookup and the
  template's load as one statement (`load_with_token`) on the small asyncpg pool
  `Connections.read_pool`, then the same `verify`, `may_read` and JSON form.

Everything else — no or bad credentials, revoked or expired tokens, a cache miss while
Redis is up (the route loads and fills the cache), an unknown or another user's
template, any database error — falls through untouched to the FastAPI route, which
owns every error, every load and every refusal.
"""

from __future__ import annotations

import re

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from templator.api.hot_read import load_with_token
from templator.auth.cache import record_key
from templator.auth.service import TokenRecord, parse, token_record, verify
from templator.connections import Connections
from templator.exceptions import Unauthorized
from templator.kit.actor import Actor
from templator.kit.ids import ID_PATTERN
from templator.postgres import ReadPool, ReadUnavailable
from templator.template.cache import template_key
from templator.template.service import may_read, may_read_template, public_json, public_json_of

READ_POOL_FALLBACKS = Counter(
    "templator_read_pool_fallbacks_total",
    "Hot reads the asyncpg read pool could not answer (no connection in time, a lost "
    "connection, a database error); each went through the route instead",
)
PREFIX = "/api/v1/templates/"
ROUTE_PATH = "/api/v1/templates/{template_id}"
_ID = re.compile(ID_PATTERN.pattern.removeprefix("^").removesuffix("$"))


class _Route:
    """What the request-context middleware reads for its metrics label."""

    path = ROUTE_PATH


class TemplateReadFastPath:
    """Serve cached template reads without the router; fall through on anything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and _ID.fullmatch(path[len(PREFIX) :]):
                body = await self._answer(scope, path[len(PREFIX) :])
                if body is not None:
                    scope["route"] = _Route
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(body)).encode()),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: Scope, template_id: str) -> bytes | None:
        """The response body when this layer can answer the read, else None."""
        token = _bearer(scope)
        if token is None:
            return None
        try:
            prefix, secret = parse(token)
        except Unauthorized:
            return None
        conns: Connections = scope["app"].state.connections
        cache = conns.cache
        cached = await cache.peek(record_key(cache, prefix), template_key(cache, template_id))
        if cached is None:
            return await _from_database(conns, prefix, secret, template_id)
        record, data = cached
        if record is None or data is None or not cache.epoch.believes(record):
            return None  # a miss or a refused value: the route loads and caches
        actor = _reader(record, secret)
        if actor is None or not may_read(actor, data):
            return None
        cache.count_hits(2)
        return public_json(data)


async def _from_database(
    conns: Connections, prefix: str, secret: str, template_id: str
) -> bytes | None:
    """Redis is unavailable: the token and the template in one statement."""
    pool = conns.read_pool
    if pool is None:
        return None
    try:
        body = await uncached_read(pool, prefix, secret, template_id)
    except ReadUnavailable:
        READ_POOL_FALLBACKS.inc()
        return None  # the route tries again on the main pool and owns the error
    if body is not None:
        conns.cache.count_bypasses(2)
    return body


async def uncached_read(pool: ReadPool, prefix: str, secret: str, template_id: str) -> bytes | None:
    """The read's response body from PostgreSQL alone (one statement on `pool`), or None
    when the route must answer (no such token or template, a refusal). ReadUnavailable
    when the pool cannot answer. The benchmarks measure this function."""
    found = await load_with_token(pool, prefix, template_id)
    if found is None or found[1] is None:
        return None  # no such token or template: the route's 401 or 404
    template = found[1]
    actor = _reader(token_record(found[0]), secret)
    if actor is None or not may_read_template(actor, template.owner_id, template.status):
        return None
    return public_json_of(template)


def _reader(record: TokenRecord, secret: str) -> Actor | None:
    """The actor of the token `record` if it verifies with `secret` and may read
    templates at all (the route's checks; a refusal is the route's to answer)."""
    try:
        actor = verify(record, secret)
    except Unauthorized:
        return None
    # A scoped credential (a worker's) reaches only its own routes: the route refuses it.
    return None if actor.scopes else actor


def _bearer(scope: Scope) -> str | None:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token:
                return token.strip()
            return None
    return None
