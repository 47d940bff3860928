"""Work-queue API models: claims, leases, heartbeats and attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, Field

from templator.ai_session.schemas import AiSession, AiSessionComplete, AiSessionState
from templator.kit.validation import JsonInt, RequestModel
from templator.stored_object.schemas import Design
from templator.template.schemas import Template, TemplateOptions

WORKER_NAME = r"^[A-Za-z0-9._:@-]{1,100}$"
LeaseSeconds = Annotated[JsonInt, Interval(ge=5, le=3600)]


class ClaimRequest(RequestModel):
    """Ask for up to `limit` ready sessions, waiting up to `wait` seconds for one."""

    worker: str = Field(pattern=WORKER_NAME, description="the worker's name, kept per attempt")
    limit: Annotated[JsonInt, Interval(ge=1, le=50)] = 1
    wait: float = Field(default=0, ge=0, le=30, description="long poll: seconds to wait")
    lease_seconds: LeaseSeconds = Field(default=60, description="the lease's length")


class Lease(BaseModel):
    """The opaque token a worker sends as `Lease-Token`, and when it runs out."""

    token: str
    expires_at: datetime


class Claim(BaseModel):
    """One claimed session, its lease, its attempt number and its designs."""

    session: AiSession
    lease: Lease
    attempt: int
    designs: list[Design]


class ClaimList(BaseModel):
    """What a claim took (empty when nothing became ready within `wait`)."""

    items: list[Claim]


class HeartbeatRequest(RequestModel):
    """Extend the lease by `lease_seconds` from now."""

    lease_seconds: LeaseSeconds = 60


class Heartbeat(BaseModel):
    """The lease's new expiry; `cancelled`: the session was cancelled, stop working."""

    expires_at: datetime | None
    cancelled: bool


class WorkComplete(AiSessionComplete):
    """Complete a held session and, with `template`, make its template in the same
    transaction: both happen or neither does."""

    template: TemplateOptions | None = None


class WorkCompleted(BaseModel):
    """The completed session and the template made of it (None when none was asked and
    none exists)."""

    session: AiSessionState
    template: Template | None


Outcome = Literal[
    "running", "completed", "failed", "retry", "lease_expired", "released", "cancelled"
]


class Attempt(BaseModel):
    """One claim of a session: who, when, how it ended and with which error."""

    attempt: int
    worker: str
    claimed_at: datetime
    ended_at: datetime | None
    outcome: Outcome
    error: Any = None


class AttemptList(BaseModel):
    """A session's attempts, oldest first."""

    items: list[Attempt]
