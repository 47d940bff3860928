"""Every API call the clients make, written once: a `Call` says the method, path, body and
how to read the answer; `Client` and `AsyncClient` only send it (with retries)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from templator.ai_session.schemas import (
    AiSession,
    AiSessionComplete,
    AiSessionCreate,
    AiSessionFail,
    AiSessionState,
    PhaseUpdate,
)
from templator.api.pagination import PageOut
from templator.client import policy
from templator.processing_log.schemas import LogBatch, LogLine
from templator.project.schemas import Project, ProjectCreate
from templator.stored_object.schemas import (
    DesignConfirm,
    DesignList,
    DesignStored,
    DirectUpload,
    DirectUploadRequest,
    ExportRequest,
    ExportResult,
)
from templator.template.schemas import Template, TemplateFromSession, TemplateOptions
from templator.work.schemas import (
    AttemptList,
    ClaimList,
    ClaimRequest,
    Heartbeat,
    HeartbeatRequest,
    WorkComplete,
    WorkCompleted,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
PREFIX = "/api/v1"
LEASE_HEADER = "Lease-Token"


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer; `safe`: repeating it cannot do the work
    twice (a read, or a create with an Idempotency-Key)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes, str]] | None = None
    safe: bool = False
    timeout: float | None = None

    def request(self) -> dict[str, Any]:
        """The arguments of `httpx.Client.request` (or the async one's) sending it."""
        extra: dict[str, Any] = {} if self.timeout is None else {"timeout": self.timeout}
        return {
            "method": self.method,
            "url": self.path,
            "json": self.json,
            "headers": self.headers,
            "files": self.files,
            **extra,
        }

    def wait(
        self,
        attempt: int,
        retries: int,
        *,
        response: httpx.Response | None = None,
        error: httpx.TransportError | None = None,
    ) -> float:
        """Seconds before sending it again after a failed `attempt` (`policy.next_wait`);
        raises the error to give up with."""
        return policy.next_wait(
            self.method,
            self.path,
            attempt,
            retries,
            safe=self.safe,
            response=response,
            error=error,
        )


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def _body(data: BaseModel) -> Any:
    return data.model_dump(mode="json", exclude_unset=True)


def _create(
    path: str, data: BaseModel | None, model: type[M], key: str | None, **extra: Any
) -> Call[M]:
    """A create: sent with an Idempotency-Key (a fresh one unless given), so retrying it
    answers the first result."""
    headers = {"Idempotency-Key": f'"{key or uuid.uuid4()}"'}
    body = None if data is None else _body(data)
    return Call("POST", PREFIX + path, _model(model), body, headers, safe=True, **extra)


def _leased(
    path: str, data: BaseModel | None, model: type[M], lease: str, *, safe: bool = False
) -> Call[M]:
    body = None if data is None else _body(data)
    return Call("POST", PREFIX + path, _model(model), body, {LEASE_HEADER: lease}, safe=safe)


def _get(path: str, model: type[M]) -> Call[M]:
    return Call("GET", PREFIX + path, _model(model), safe=True)


# --- projects and sessions (the web app's side) -------------------------------------------


def create_project(data: ProjectCreate, *, idempotency_key: str | None = None) -> Call[Project]:
    """POST /projects."""
    return _create("/projects", data, Project, idempotency_key)


def create_session(data: AiSessionCreate, *, idempotency_key: str | None = None) -> Call[AiSession]:
    """POST /sessions (`draft=True`: not claimable until `submit_session`)."""
    return _create("/sessions", data, AiSession, idempotency_key)


def submit_session(session_id: str) -> Call[AiSession]:
    """POST /sessions/{id}/submit: a draft becomes ready for workers."""
    return Call("POST", f"{PREFIX}/sessions/{session_id}/submit", _model(AiSession))


def get_session(session_id: str) -> Call[AiSession]:
    """GET /sessions/{id}."""
    return _get(f"/sessions/{session_id}", AiSession)


def session_state(session_id: str) -> Call[AiSessionState]:
    """GET /sessions/{id}/state."""
    return _get(f"/sessions/{session_id}/state", AiSessionState)


def cancel_session(session_id: str) -> Call[AiSessionState]:
    """POST /sessions/{id}/cancel."""
    return Call("POST", f"{PREFIX}/sessions/{session_id}/cancel", _model(AiSessionState))


def attempts(session_id: str) -> Call[AttemptList]:
    """GET /sessions/{id}/attempts: every claim of the session and how it ended."""
    return _get(f"/sessions/{session_id}/attempts", AttemptList)


# --- designs ------------------------------------------------------------------------------


def upload_design(
    session_id: str,
    content: bytes,
    *,
    filename: str,
    content_type: str,
    idempotency_key: str | None = None,
) -> Call[DesignStored]:
    """POST /sessions/{id}/designs: the file streamed through the API."""
    files = {"file": (filename, content, content_type)}
    return _create(
        f"/sessions/{session_id}/designs", None, DesignStored, idempotency_key, files=files
    )


def direct_upload(
    session_id: str, data: DirectUploadRequest, *, idempotency_key: str | None = None
) -> Call[DirectUpload]:
    """POST /sessions/{id}/designs/direct: a presigned POST to the store."""
    return _create(f"/sessions/{session_id}/designs/direct", data, DirectUpload, idempotency_key)


def confirm_design(
    session_id: str, key: str, *, idempotency_key: str | None = None
) -> Call[DesignStored]:
    """POST /sessions/{id}/designs/confirm: record a direct upload once checked."""
    data = DesignConfirm(key=key)
    path = f"/sessions/{session_id}/designs/confirm"
    return _create(path, data, DesignStored, idempotency_key)


def list_designs(session_id: str) -> Call[DesignList]:
    """GET /sessions/{id}/designs: each with a presigned download URL."""
    return _get(f"/sessions/{session_id}/designs", DesignList)


# --- work (the worker's side) -------------------------------------------------------------


def claim(data: ClaimRequest) -> Call[ClaimList]:
    """POST /work/claim (not retried once sent: a lost answer's leases expire and are
    rescued)."""
    return Call(
        "POST", f"{PREFIX}/work/claim", _model(ClaimList), _body(data), timeout=data.wait + 30
    )


def heartbeat(session_id: str, lease: str, *, lease_seconds: int = 60) -> Call[Heartbeat]:
    """POST /work/{id}/heartbeat: extend the lease; `cancelled` says stop."""
    data = HeartbeatRequest(lease_seconds=lease_seconds)
    return _leased(f"/work/{session_id}/heartbeat", data, Heartbeat, lease, safe=True)


def release(session_id: str, lease: str) -> Call[AiSession]:
    """POST /work/{id}/release: give the session back to the queue now."""
    return _leased(f"/work/{session_id}/release", None, AiSession, lease)


def record_phase(session_id: str, data: PhaseUpdate, lease: str) -> Call[AiSessionState]:
    """POST /sessions/{id}/phases under the lease."""
    return _leased(f"/sessions/{session_id}/phases", data, AiSessionState, lease)


def _appended(response: httpx.Response) -> int:
    return int(response.json()["appended"])


def append_logs(session_id: str, lines: list[LogLine], lease: str) -> Call[int]:
    """POST /sessions/{id}/logs under the lease; how many lines were appended."""
    body = _body(LogBatch(lines=lines))
    path = f"{PREFIX}/sessions/{session_id}/logs"
    return Call("POST", path, _appended, body, {LEASE_HEADER: lease})


def complete(
    session_id: str,
    data: AiSessionComplete,
    lease: str,
    *,
    template: TemplateOptions | None = None,
) -> Call[WorkCompleted]:
    """POST /work/{id}/complete under the lease: the session completed and, with
    `template`, its template made, both in one transaction. Retried like a create: a
    repeat under the same lease answers the first completion and its template."""
    body = WorkComplete(**data.model_dump(exclude_unset=True), template=template)
    return _leased(f"/work/{session_id}/complete", body, WorkCompleted, lease, safe=True)


def fail(session_id: str, data: AiSessionFail, lease: str) -> Call[AiSessionState]:
    """POST /sessions/{id}/fail under the lease (`retryable`: back to the queue)."""
    return _leased(f"/sessions/{session_id}/fail", data, AiSessionState, lease)


def template_from_session(
    data: TemplateFromSession, *, idempotency_key: str | None = None
) -> Call[Template]:
    """POST /templates/from-session."""
    return _create("/templates/from-session", data, Template, idempotency_key)


def project_templates(project_id: str, *, limit: int = 200) -> Call[PageOut[Template]]:
    """GET /projects/{id}/templates: the newest `limit` of a project's templates."""
    path = f"/projects/{project_id}/templates?limit={limit}"
    return _get(path, PageOut[Template])


def export_module(template_id: str, *, expires_in: int = 3600) -> Call[ExportResult]:
    """POST /templates/{id}/export: the HubSpot module zip, stored, and its download URL."""
    body = _body(ExportRequest(expires_in=expires_in))
    path = f"{PREFIX}/templates/{template_id}/export"
    return Call("POST", path, _model(ExportResult), body)
