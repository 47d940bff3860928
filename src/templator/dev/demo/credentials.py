"""Credentials of the demo and the reference worker on the embedded stack (`templator up`):
made through the services (as an operator's `templator user/token create` would), never
over HTTP, so the API they then call sees ordinary tokens."""

from __future__ import annotations

import os
import time
from pathlib import Path

from templator.audit.service import CLI
from templator.auth.schemas import TokenCreate
from templator.auth.service import TokenService
from templator.connections import Connections
from templator.exceptions import Unauthorized
from templator.kit.uow import unit_of_work
from templator.models.enums import UserRole
from templator.user.errors import UserNotFound
from templator.user.schemas import UserCreate
from templator.user.service import UserService

WORKER_EMAIL = "templator-worker@example.com"
WORKER_TOKEN_FILE = "worker.token"


async def demo_user(conns: Connections) -> tuple[str, str]:
    """A fresh demo user (a web app's end user) and a one-day token: (email, token)."""
    email = f"demo-{time.time_ns() // 1000}@example.com"
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        user = await UserService(session, conns.cache).create(
            UserCreate(email=email, name="Demo designer"), origin=CLI
        )
        token = await TokenService(session, conns.cache).create(
            user.id, TokenCreate(name="demo", expires_days=1), origin=CLI
        )
    return email, token.token


async def _valid(conns: Connections, token: str) -> bool:
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        try:
            actor = await TokenService(session, conns.cache).authenticate(token)
        except Unauthorized:
            return False
    return "worker" in actor.scopes


async def worker_token(conns: Connections, var_dir: Path) -> str:
    """The embedded stack's worker credential: the token saved in var/worker.token while it
    is valid, else a new one (scope `worker`) of the ADMIN `templator-worker@example.com`
    (made if missing), saved there (mode 0600) for the next worker."""
    path = var_dir / WORKER_TOKEN_FILE
    if path.exists():
        saved = path.read_text().strip()
        if saved and await _valid(conns, saved):
            return saved
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        users = UserService(session, conns.cache)
        try:
            user = await users.find(WORKER_EMAIL)
        except UserNotFound:
            user = await users.create(
                UserCreate(email=WORKER_EMAIL, name="Reference worker", role=UserRole.ADMIN),
                origin=CLI,
            )
        created = await TokenService(session, conns.cache).create(
            user.id,
            TokenCreate(name="reference worker", expires_days=30, scopes=["worker"]),
            origin=CLI,
            owner_role=user.role,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(created.token)
    return created.token
