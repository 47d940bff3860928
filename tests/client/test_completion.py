"""Completing a session and making its template is one transaction (issue #24's gap).

The reference worker used to complete (`POST /sessions/{id}/complete`) and then make the
template (`POST /templates/from-session`): a worker that died between the two left a
COMPLETED session with no template, which nothing recovered. `POST /work/{id}/complete`
does both in one transaction, idempotently under the lease.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate
from templator.client import ApiError, AsyncClient
from templator.client.reference import reference_worker
from templator.client.worker import Job, Worker
from templator.models import SessionStatus
from templator.project.schemas import ProjectCreate
from templator.template.schemas import TemplateOptions
from templator.work.schemas import ClaimRequest
from tests.client.conftest import BASE
from tests.client.test_worker import RESULT, Outcomes, _run_until


class DiesAfterComplete(httpx.AsyncBaseTransport):
    """A worker process that dies as soon as its completion has been answered: every
    request after that one fails as if it was never sent."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.dead = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.dead:
            raise httpx.ConnectError("the worker was killed", request=request)
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/complete") and response.status_code < 400:
            self.dead = True
        return response


class LosesFirstCompletionAnswer(httpx.AsyncBaseTransport):
    """The first completion reaches the server and runs; its answer is lost on the way
    back (a dropped connection)."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.completions = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/complete"):
            self.completions += 1
            if self.completions == 1:
                await response.aread()
                raise httpx.ReadError("connection dropped before the answer", request=request)
        return response


async def _ready(web: AsyncClient) -> tuple[str, str]:
    """A ready session with no design: (project id, session id)."""
    project = await web.create_project(ProjectCreate(name="P"))
    session = await web.create_session(AiSessionCreate(project_id=project.id))
    return project.id, session.id


async def _templates_of(web: AsyncClient, project_id: str, session_id: str) -> list[str]:
    page = await web.project_templates(project_id)
    return [t.id for t in page.items if t.session_id == session_id]


async def test_a_worker_killed_right_after_completing_leaves_no_session_without_its_template(
    web: AsyncClient, api_app: FastAPI, worker_token: str
) -> None:
    project_id, sid = await _ready(web)
    transport = DiesAfterComplete(api_app)
    outcomes = Outcomes()
    async with AsyncClient(BASE, worker_token, transport=transport, retries=1) as client:
        worker = reference_worker(client, name="doomed", concurrency=1, on_outcome=outcomes)
        worker.wait = 1
        await _run_until(worker, outcomes, lambda seen: (sid, "completed") in seen)
    assert transport.dead
    assert (await web.get_session(sid)).status is SessionStatus.COMPLETED
    # Before: COMPLETED, and the template call after it never reached the API.
    assert len(await _templates_of(web, project_id, sid)) == 1


async def _claimed(worker_client: AsyncClient, sid: str) -> str:
    [claim] = (await worker_client.claim(ClaimRequest(worker="w", wait=5))).items
    assert claim.session.id == sid
    return claim.lease.token


async def test_a_completion_whose_answer_was_lost_is_retried_and_makes_one_template(
    web: AsyncClient, api_app: FastAPI, worker_token: str, worker_client: AsyncClient
) -> None:
    project_id, sid = await _ready(web)
    lease = await _claimed(worker_client, sid)
    transport = LosesFirstCompletionAnswer(api_app)
    options = TemplateOptions(tags=["generated"])
    async with AsyncClient(BASE, worker_token, transport=transport) as client:
        done = await client.complete(sid, RESULT, lease, template=options)
    assert transport.completions == 2  # the client retried; the server answered the first
    assert done.session.status is SessionStatus.COMPLETED
    assert done.template is not None and done.template.tags == ["generated"]
    again = await worker_client.complete(sid, RESULT, lease, template=options)
    assert again.template is not None and again.template.id == done.template.id
    assert await _templates_of(web, project_id, sid) == [done.template.id]
    [attempt] = (await web.attempts(sid)).items
    assert attempt.outcome == "completed"


async def test_a_repeat_without_the_completing_lease_is_refused(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    project_id, sid = await _ready(web)
    lease = await _claimed(worker_client, sid)
    await worker_client.complete(sid, RESULT, lease, template=TemplateOptions())
    with pytest.raises(ApiError) as refused:
        await worker_client.complete(sid, RESULT, "not-the-lease", template=TemplateOptions())
    assert refused.value.code == "invalid_session_transition"
    assert len(await _templates_of(web, project_id, sid)) == 1


async def test_a_completion_whose_template_cannot_be_made_changes_nothing(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    project_id, sid = await _ready(web)
    lease = await _claimed(worker_client, sid)
    unusable = AiSessionComplete(final_result={"name": "x" * 300, "html": "<p></p>"})
    with pytest.raises(ApiError) as refused:
        await worker_client.complete(sid, unusable, lease, template=TemplateOptions())
    assert refused.value.status == 422
    session = await web.get_session(sid)
    assert session.status is SessionStatus.PROCESSING and session.final_result is None
    assert await _templates_of(web, project_id, sid) == []
    done = await worker_client.complete(sid, RESULT, lease, template=TemplateOptions())
    assert done.template is not None and done.template.session_id == sid


async def test_the_worker_fails_a_session_whose_result_makes_no_template(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    _, sid = await _ready(web)

    async def handler(job: Job) -> AiSessionComplete:
        return AiSessionComplete(final_result={"name": "x" * 300})

    outcomes = Outcomes()
    worker = Worker(
        worker_client,
        handler,
        name="w6",
        wait=1,
        template=TemplateOptions(),
        on_outcome=outcomes,
    )
    await _run_until(worker, outcomes, lambda seen: (sid, "failed") in seen)
    assert (await web.get_session(sid)).status is SessionStatus.FAILED
    error = (await web.attempts(sid)).items[0].error
    assert error["type"] == "ApiError"


async def test_completing_needs_the_lease_header(
    web: AsyncClient, worker_client: AsyncClient
) -> None:
    _, sid = await _ready(web)
    await _claimed(worker_client, sid)
    response = await worker_client.http.post(f"/api/v1/work/{sid}/complete", json={})
    assert response.status_code == 409 and response.json()["code"] == "lease_required"
