"""`Idempotency-Key` on the API's creates: the request dependency and the replay.

An endpoint that creates takes `idem: Idempotent` and returns `await idem.done(result)`:
the dependency claims the key in the request's own transaction (answering a replay or a
refusal before the endpoint runs) and `done` stores the answer in that transaction, so the
key commits with the create or not at all (`idempotency/service.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from typing import IO, Annotated, TypeVar

import orjson
from fastapi import Depends, FastAPI, Header, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.responses import Response

from templator.api.deps import Conns, CurrentActor, DbSession
from templator.idempotency.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from templator.idempotency.service import (
    IdempotencyService,
    IdempotentRequest,
    StoredAnswer,
    fingerprint,
)

M = TypeVar("M", bound=BaseModel)

KEY_PATTERN = r'^(?:"[A-Za-z0-9._:~+/=-]{1,255}"|[A-Za-z0-9._:~+/=-]{1,255})$'
"""An sf-string as the draft writes it (`"…"`), or the bare value Stripe's clients send."""
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENT_ERRORS = (IdempotencyKeyReused, IdempotencyKeyInFlight)
"""What an endpoint taking `Idempotent` adds to its documented answers (`responses_for`)."""


class IdempotentReplay(Exception):
    """The stored first answer to a key, answered in place of running the create again."""

    def __init__(self, answer: StoredAnswer) -> None:
        super().__init__("idempotent replay")
        self.answer = answer


class Idempotency:
    """The request's key (if it sent one); `done` stores the create's answer under it."""

    def __init__(
        self,
        service: IdempotencyService | None = None,
        request: IdempotentRequest | None = None,
        ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self._service = service
        self._request = request
        self._ttl = ttl

    async def done(self, result: M, *, status: int = 201) -> M:
        """Store `result` as the answer to replay for this key; return it."""
        if self._service is not None and self._request is not None:
            body = result.model_dump(mode="json")
            await self._service.store(self._request, status=status, body=body, ttl=self._ttl)
        return result


def _hash_file(file: IO[bytes]) -> bytes:
    digest = hashlib.sha256()
    file.seek(0)
    while chunk := file.read(1024 * 1024):
        digest.update(chunk)
    file.seek(0)
    return digest.digest()


async def _body_parts(request: Request) -> list[bytes]:
    """The request body as fingerprinted: the raw bytes, or for a form (already parsed
    and spooled by FastAPI) each field's name and value, files by their content's hash."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return [await request.body()]
    parts: list[bytes] = []
    for name, value in (await request.form()).multi_items():
        parts.append(name.encode())
        if isinstance(value, UploadFile):
            parts.append((value.filename or "").encode())
            parts.append(await asyncio.to_thread(_hash_file, value.file))
        else:
            parts.append(value.encode())
    return parts


async def get_idempotency(
    request: Request,
    actor: CurrentActor,
    conns: Conns,
    session: DbSession,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=KEY_PATTERN,
            description="Retry-safe create (IETF httpapi Idempotency-Key draft): the same "
            "key with the same request answers the first response again (with "
            "`Idempotent-Replayed: true`) for IDEMPOTENCY_KEY_TTL_HOURS (24 h); with "
            "another body: 422 `idempotency_key_reused`; while the first still runs: 409 "
            "`idempotency_key_in_flight`. Keys are the caller's own.",
        ),
    ] = None,
) -> Idempotency:
    """Claim the request's Idempotency-Key in its transaction (replaying a stored answer)."""
    if idempotency_key is None:
        return Idempotency()
    key = idempotency_key.strip('"')
    claim = IdempotentRequest(
        user_id=actor.id,
        key=key,
        method=request.method,
        path=request.url.path,
        fingerprint=fingerprint(request.method, request.url.path, await _body_parts(request)),
    )
    service = IdempotencyService(session)
    answer = await service.claim(claim)
    if answer is not None:
        raise IdempotentReplay(answer)
    return Idempotency(service, claim, timedelta(hours=conns.settings.idempotency_key_ttl_hours))


Idempotent = Annotated[Idempotency, Depends(get_idempotency)]


def install_replay_handler(app: FastAPI) -> None:
    """Answer a replayed key with its stored status and body."""

    @app.exception_handler(IdempotentReplay)
    async def _replay(request: Request, exc: IdempotentReplay) -> Response:
        return Response(
            orjson.dumps(exc.answer.body),
            status_code=exc.answer.status,
            media_type="application/json",
            headers={REPLAYED_HEADER: "true"},
        )
