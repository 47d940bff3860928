"""Leases of the work queue, as the session's writes check them (docs/work-queue.md).

A claim hands the worker an opaque token; the session row keeps only its SHA-256
(`lease_hash`) and each attempt's hash stays in `session_attempts`, so a refused write
can say *why*: no token where one is needed, a token of no attempt of this session, the
token of an earlier attempt (the lease was lost), or the current one past its expiry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from templator.ai_session.errors import LeaseExpired, LeaseInvalid, LeaseLost, LeaseRequired
from templator.models.enums import SessionStatus

HEADER = "Lease-Token"
MAX_TOKEN_LENGTH = 200


def lease_hash(token: str) -> str:
    """What the database keeps of a lease token (equal to SQL
    `encode(sha256(convert_to(token, 'UTF8')), 'hex')`, which the claim computes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_of(token: str | None) -> str | None:
    """The hash of a token sent in the header (None when none was sent); a token of
    impossible length is no lease of anything."""
    if token is None:
        return None
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LeaseInvalid(f"the {HEADER} header is no lease of this session", field=HEADER)
    return lease_hash(token)


@dataclass(frozen=True, slots=True)
class LeaseView:
    """What a refused write needs to know of a session's lease."""

    owner_id: str
    status: SessionStatus
    current_hash: str | None
    expired: bool
    earlier_attempt: bool
    """The hash sent was the lease of an earlier attempt of this session."""


def check(view: LeaseView, sent: str | None, *, session_id: str, worker: bool) -> None:
    """Raise the lease error a write with hash `sent` meets on this session, if any.

    A session nobody holds takes writes without a token (its owner's own flow), except
    from worker credentials, which only ever write under a lease.
    """
    if sent is None:
        if worker or (view.current_hash is not None and view.status is SessionStatus.PROCESSING):
            raise LeaseRequired(
                f"session {session_id} is worked on under a lease: send its {HEADER} header",
                field=HEADER,
            )
        return
    if sent == view.current_hash:
        if view.expired and view.status is SessionStatus.PROCESSING:
            raise LeaseExpired(
                f"the lease of session {session_id} expired; it will be given to another "
                "worker — stop working on it",
                field=HEADER,
            )
        return
    if view.earlier_attempt:
        raise LeaseLost(
            f"this lease of session {session_id} was lost (the session was rescued, released "
            "or retried and may be held by another worker) — stop working on it",
            field=HEADER,
        )
    raise LeaseInvalid(f"the {HEADER} header is no lease of session {session_id}", field=HEADER)
