"""`templator.client`: typed calls, problem+json as ApiError, creates retried safely."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from templator.ai_session.schemas import AiSessionCreate
from templator.client import ApiError, AsyncClient
from templator.connections import Connections
from templator.models import Project, SessionStatus
from templator.project.schemas import ProjectCreate
from templator.work.schemas import ClaimRequest
from tests.client.conftest import BASE, MakeCaller

HTML = b"<!DOCTYPE html><html><body><header><h1>Acme</h1></header></body></html>"


async def test_the_web_apps_calls_return_the_servers_schemas(web: AsyncClient) -> None:
    project = await web.create_project(ProjectCreate(name="Site"))
    draft = await web.create_session(AiSessionCreate(project_id=project.id, draft=True))
    assert draft.status is SessionStatus.PENDING and draft.ready_at is None
    streamed = await web.upload_design(draft.id, HTML, filename="d.html", content_type="text/html")
    direct = await web.upload_design_direct(
        draft.id, HTML, filename="e.html", content_type="text/html"
    )
    designs = await web.list_designs(draft.id)
    assert [d.key for d in designs.items] == [streamed.key, direct.key]
    ready = await web.submit_session(draft.id)
    assert ready.ready_at is not None


async def test_a_problem_is_an_api_error_with_its_code(web: AsyncClient) -> None:
    with pytest.raises(ApiError) as caught:
        await web.get_session("a" * 25)
    assert (caught.value.status, caught.value.code) == (404, "session_not_found")


async def test_a_user_token_may_not_claim(web: AsyncClient) -> None:
    with pytest.raises(ApiError) as caught:
        await web.claim(ClaimRequest(worker="w1"))
    assert caught.value.status == 403


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Runs every request, but loses the first answer to a POST (a timeout after the
    server did the work)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and not self.lost:
            self.lost += 1
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


async def test_a_create_whose_answer_was_lost_is_retried_once(
    api_app: FastAPI, make_caller: MakeCaller, store_connections: Connections
) -> None:
    owner = await make_caller()
    transport = LoseFirstAnswer(httpx.ASGITransport(app=api_app))
    async with AsyncClient(BASE, owner.token, transport=transport) as client:
        project = await client.create_project(ProjectCreate(name="Once"))
    assert transport.lost == 1 and project.name == "Once"
    async with store_connections.sessionmaker() as session:
        stmt = select(func.count()).select_from(Project).where(Project.user_id == owner.id)
        assert (await session.execute(stmt)).scalar_one() == 1
