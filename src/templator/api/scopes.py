"""What a scoped token may call: a `worker` token only the work queue's routes.

Least privilege is enforced here, once, for every route: a worker credential reaches the
routes below and gets 403 `scope_forbidden` everywhere else (users, projects, templates,
the audit log, exports, deletions). The services then treat it as able to work on any
user's session (`Actor.works_on_any_session`), under a lease for every write.
"""

from __future__ import annotations

from starlette.requests import Request

from templator.auth.errors import ScopeForbidden
from templator.kit.actor import Actor

PREFIX = "/api/v1"
SESSION = "/sessions/{session_id}"
WORKER_ROUTES = frozenset(
    {
        ("POST", "/work/claim"),
        ("POST", "/work/{session_id}/heartbeat"),
        ("POST", "/work/{session_id}/release"),
        ("POST", "/work/{session_id}/complete"),
        ("GET", SESSION),
        ("GET", f"{SESSION}/state"),
        ("GET", f"{SESSION}/attempts"),
        ("GET", f"{SESSION}/designs"),
        ("GET", f"{SESSION}/events"),
        ("GET", f"{SESSION}/logs"),
        ("POST", f"{SESSION}/phases"),
        ("POST", f"{SESSION}/logs"),
        ("POST", f"{SESSION}/complete"),
        ("POST", f"{SESSION}/fail"),
        ("POST", "/templates/from-session"),
    }
)


def check_scopes(actor: Actor, request: Request) -> None:
    """ScopeForbidden unless the actor's scopes allow the request's route."""
    if not actor.scopes:
        return
    path: str = getattr(request.scope.get("route"), "path", "")
    if (request.method, path.removeprefix(PREFIX)) not in WORKER_ROUTES:
        raise ScopeForbidden(
            f"this token is limited to the work queue (scopes: {', '.join(sorted(actor.scopes))}); "
            f"{request.method} {path or request.url.path} is outside it"
        )
