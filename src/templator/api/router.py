"""Every domain router under /api/v1.

The routers are included into the app directly with the /api/v1 prefix, not through an
intermediate router: FastAPI matches included routers level by level (and the selected
branch twice), so every nesting level costs each request another pass over the routes.
Sessions and templates, the routers workers and the UI hit most, come first.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from templator.ai_session.endpoints import router as sessions
from templator.audit.endpoints import router as audit
from templator.auth.endpoints import router as tokens
from templator.processing_log.endpoints import router as logs
from templator.project.endpoints import router as projects
from templator.stored_object.endpoints import router as objects
from templator.template.endpoints import router as templates
from templator.user.endpoints import router as users
from templator.work.endpoints import router as work

PREFIX = "/api/v1"
ROUTERS: tuple[APIRouter, ...] = (
    templates,
    sessions,
    work,
    logs,
    projects,
    objects,
    users,
    tokens,
    audit,
)


def include_api(app: FastAPI) -> None:
    """Mount every domain router under /api/v1 (the problems every operation can answer,
    such as 503 `busy`, are documented by `api.contract`)."""
    for router in ROUTERS:
        app.include_router(router, prefix=PREFIX)
