"""X-Request-ID: a safe client id is kept, anything else replaced; every response has one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from templator.app import create_app
from templator.connections import Connections

GENERATED = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize(
    "sent",
    ["req-1", "a.b:c_d-9", "x" * 128],
)
async def test_a_short_safe_request_id_is_echoed(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": sent})
    assert response.headers["x-request-id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["x" * 129, "has space", "semi;colon", "new\tline", "<script>", "ünï"],
    ids=["too-long", "space", "semicolon", "tab", "markup", "non-ascii"],
)
async def test_an_unsafe_request_id_is_replaced(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/api/v1/users/me", headers={"X-Request-ID": sent.encode("utf-8")})
    assert response.status_code == 401
    assert GENERATED.match(response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


@pytest.fixture
async def failing_client(connections: Connections) -> AsyncIterator[httpx.AsyncClient]:
    """The real app with one extra route that fails the way a bug would."""
    app = create_app(connections.settings, connections=connections)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_a_500_carries_the_request_id(failing_client: httpx.AsyncClient) -> None:
    response = await failing_client.get("/broken", headers={"X-Request-ID": "bug-hunt-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "bug-hunt-1"
    problem = response.json()
    assert problem["code"] == "internal_error" and problem["request_id"] == "bug-hunt-1"
    assert "a bug" not in response.text
