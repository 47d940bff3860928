"""Every domain router under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from templator.ai_session.endpoints import router as sessions
from templator.audit.endpoints import router as audit
from templator.auth.endpoints import router as tokens
from templator.project.endpoints import router as projects
from templator.storage.endpoints import router as objects
from templator.template.endpoints import router as templates
from templator.user.endpoints import router as users

api = APIRouter(prefix="/api/v1")
for router in (users, tokens, audit, projects, sessions, templates, objects):
    api.include_router(router)
