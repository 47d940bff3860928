"""The authorization matrix: every endpoint × (anonymous, another user, owner, EXPERT, ADMIN,
a worker token).

Each cell runs against a fresh world (the owner's project, sessions, template and token),
so a cell that deletes or changes something cannot influence the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from templator.models import UserRole
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
HTML = b"<!DOCTYPE html><html><body>x</body></html>"
ROLES = ("anonymous", "other", "owner", "expert", "admin", "worker")


@dataclass
class World:
    owner: Caller
    project: str
    pending: str
    processing: str
    done: str
    draft: str
    template: str
    in_review: str
    token_id: str
    design: str


async def build_world(client: httpx.AsyncClient, make_caller: MakeCaller) -> World:
    owner = await make_caller()
    h = owner.headers

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body, headers=h)
        assert response.status_code in (200, 201), (path, response.text)
        result: dict[str, Any] = response.json()
        return result

    project = (await post("/api/v1/projects", {"name": "World"}))["id"]
    sessions = [(await post("/api/v1/sessions", {"project_id": project}))["id"] for _ in range(3)]
    pending, processing, done = sessions
    await post(f"/api/v1/sessions/{processing}/start", {})
    await post(f"/api/v1/sessions/{done}/start", {})
    gen = {"name": "Done", "html": "<p/>", "hubspot_config": hubspot_config()}
    await post(
        f"/api/v1/sessions/{done}/phases", {"phase": "generation", "payload": gen, "progress": 1}
    )
    await post(f"/api/v1/sessions/{done}/complete", {})
    body = {
        "project_id": project,
        "name": "T",
        "html_content": "<p/>",
        "hubspot_config": hubspot_config(),
    }
    template = (await post("/api/v1/templates", body))["id"]
    in_review = (await post("/api/v1/templates", body))["id"]
    await post(f"/api/v1/templates/{in_review}/status", {"status": "REVIEW"})
    token_id = (await post("/api/v1/tokens", {"name": "extra"}))["id"]
    draft = (await post("/api/v1/sessions", {"project_id": project, "draft": True}))["id"]
    upload = await client.post(
        f"/api/v1/sessions/{pending}/designs",
        files={"file": ("d.html", HTML, "text/html")},
        headers=h,
    )
    design = upload.json()["key"]
    return World(
        owner, project, pending, processing, done, draft, template, in_review, token_id, design
    )


Request = Callable[[World], tuple[str, str, dict[str, Any]]]
# A worker token reaches only the work queue's routes (api/scopes.py): 403 elsewhere.
OWNED = {"anonymous": 401, "other": 404, "owner": 200, "expert": 404, "admin": 200, "worker": 403}
OWNED_CREATED = OWNED | {"owner": 201, "admin": 201}
OWNED_NO_CONTENT = OWNED | {"owner": 204, "admin": 204}
ADMIN_ONLY = {
    "anonymous": 401,
    "other": 403,
    "owner": 403,
    "expert": 403,
    "admin": 200,
    "worker": 403,
}
ANY_USER = {
    "anonymous": 401,
    "other": 200,
    "owner": 200,
    "expert": 200,
    "admin": 200,
    "worker": 403,
}
# Reads a worker makes of any user's session.
WORKER_READS = OWNED | {"worker": 200}
# A worker's writes go through only under a lease: without one, 409 lease_required.
WORKER_WRITES = OWNED | {"worker": 409}
# The work queue's own routes: a worker token only (403 worker_scope_required otherwise);
# without a Lease-Token header, heartbeat, release and complete answer 409 lease_required.
WORK_ONLY = {
    "anonymous": 401,
    "other": 403,
    "owner": 403,
    "expert": 403,
    "admin": 403,
    "worker": 200,
}
ANY_USER_CREATED = {role: (201 if code == 200 else code) for role, code in ANY_USER.items()}
# A template up for review (REVIEW, APPROVED, PUBLISHED) is readable by every EXPERT, who
# has to see what they approve; changing it stays the owner's (or an ADMIN's): 403.
REVIEWABLE_READ = OWNED | {"expert": 200}
REVIEWABLE_CHANGE = OWNED | {"expert": 403}

MATRIX: list[tuple[str, Request, dict[str, int]]] = [
    ("me", lambda w: ("GET", "/api/v1/users/me", {}), ANY_USER),
    ("list users", lambda w: ("GET", "/api/v1/users", {}), ADMIN_ONLY),
    (
        "create user",
        lambda w: ("POST", "/api/v1/users", {"json": {"email": f"n{id(w)}@example.com"}}),
        ADMIN_ONLY | {"admin": 201},
    ),
    ("get user", lambda w: ("GET", f"/api/v1/users/{w.owner.id}", {}), OWNED),
    (
        "update user",
        lambda w: ("PATCH", f"/api/v1/users/{w.owner.id}", {"json": {"name": "N"}}),
        OWNED,
    ),
    (
        "set role",
        lambda w: ("PUT", f"/api/v1/users/{w.owner.id}/role", {"json": {"role": "EXPERT"}}),
        ADMIN_ONLY,
    ),
    ("export user", lambda w: ("GET", f"/api/v1/users/{w.owner.id}/export", {}), OWNED),
    ("erase user", lambda w: ("DELETE", f"/api/v1/users/{w.owner.id}", {}), OWNED),
    (
        "create token",
        lambda w: ("POST", "/api/v1/tokens", {"json": {"name": "t"}}),
        ANY_USER_CREATED,
    ),
    ("list tokens", lambda w: ("GET", "/api/v1/tokens", {}), ANY_USER),
    ("revoke token", lambda w: ("DELETE", f"/api/v1/tokens/{w.token_id}", {}), OWNED),
    ("audit", lambda w: ("GET", "/api/v1/audit", {}), ADMIN_ONLY),
    (
        "create project",
        lambda w: ("POST", "/api/v1/projects", {"json": {"name": "P"}}),
        ANY_USER_CREATED,
    ),
    ("list projects", lambda w: ("GET", "/api/v1/projects", {}), ANY_USER),
    ("get project", lambda w: ("GET", f"/api/v1/projects/{w.project}", {}), OWNED),
    (
        "update project",
        lambda w: ("PATCH", f"/api/v1/projects/{w.project}", {"json": {"name": "Q"}}),
        OWNED,
    ),
    (
        "delete project",
        lambda w: ("DELETE", f"/api/v1/projects/{w.project}", {}),
        OWNED_NO_CONTENT,
    ),
    (
        "create session",
        lambda w: ("POST", "/api/v1/sessions", {"json": {"project_id": w.project}}),
        OWNED_CREATED,
    ),
    ("list sessions", lambda w: ("GET", f"/api/v1/projects/{w.project}/sessions", {}), OWNED),
    ("get session", lambda w: ("GET", f"/api/v1/sessions/{w.pending}", {}), WORKER_READS),
    (
        "session state",
        lambda w: ("GET", f"/api/v1/sessions/{w.pending}/state", {}),
        WORKER_READS,
    ),
    (
        "attempts",
        lambda w: ("GET", f"/api/v1/sessions/{w.done}/attempts", {}),
        WORKER_READS,
    ),
    ("submit", lambda w: ("POST", f"/api/v1/sessions/{w.draft}/submit", {}), OWNED),
    (
        "record phase",
        lambda w: (
            "POST",
            f"/api/v1/sessions/{w.processing}/phases",
            {"json": {"phase": "upload", "payload": {}, "progress": 0.1}},
        ),
        WORKER_WRITES,
    ),
    (
        "claim",
        lambda w: ("POST", "/api/v1/work/claim", {"json": {"worker": "matrix"}}),
        WORK_ONLY,
    ),
    (
        "heartbeat",
        lambda w: ("POST", f"/api/v1/work/{w.processing}/heartbeat", {}),
        WORK_ONLY | {"worker": 409},
    ),
    (
        "release",
        lambda w: ("POST", f"/api/v1/work/{w.processing}/release", {}),
        WORK_ONLY | {"worker": 409},
    ),
    (
        "complete with its template",
        lambda w: ("POST", f"/api/v1/work/{w.processing}/complete", {"json": {"template": {}}}),
        WORK_ONLY | {"worker": 409},
    ),
    ("start", lambda w: ("POST", f"/api/v1/sessions/{w.pending}/start", {}), OWNED),
    (
        "complete",
        lambda w: ("POST", f"/api/v1/sessions/{w.processing}/complete", {"json": {}}),
        WORKER_WRITES,
    ),
    (
        "fail",
        lambda w: ("POST", f"/api/v1/sessions/{w.processing}/fail", {"json": {"error": {"e": 1}}}),
        WORKER_WRITES,
    ),
    ("cancel", lambda w: ("POST", f"/api/v1/sessions/{w.processing}/cancel", {}), OWNED),
    ("delete session", lambda w: ("DELETE", f"/api/v1/sessions/{w.pending}", {}), OWNED_NO_CONTENT),
    (
        "append logs",
        lambda w: (
            "POST",
            f"/api/v1/sessions/{w.pending}/logs",
            {"json": {"lines": [{"phase": "upload", "message": "m"}]}},
        ),
        OWNED_CREATED | {"worker": 409},
    ),
    ("read logs", lambda w: ("GET", f"/api/v1/sessions/{w.pending}/logs", {}), WORKER_READS),
    (
        "upload design",
        lambda w: (
            "POST",
            f"/api/v1/sessions/{w.pending}/designs",
            {"files": {"file": ("d.html", HTML, "text/html")}},
        ),
        OWNED_CREATED,
    ),
    (
        "list designs",
        lambda w: ("GET", f"/api/v1/sessions/{w.pending}/designs", {}),
        WORKER_READS,
    ),
    (
        "direct upload",
        lambda w: (
            "POST",
            f"/api/v1/sessions/{w.pending}/designs/direct",
            {"json": {"filename": "d.html", "content_type": "text/html", "size": 10}},
        ),
        OWNED_CREATED,
    ),
    (
        "confirm design",
        lambda w: (
            "POST",
            f"/api/v1/sessions/{w.pending}/designs/confirm",
            {"json": {"key": w.design}},
        ),
        OWNED_CREATED,
    ),
    ("events", lambda w: ("GET", f"/api/v1/sessions/{w.done}/events", {}), WORKER_READS),
    (
        "create template",
        lambda w: (
            "POST",
            "/api/v1/templates",
            {
                "json": {
                    "project_id": w.project,
                    "name": "N",
                    "html_content": "<p/>",
                    "hubspot_config": hubspot_config(),
                }
            },
        ),
        OWNED_CREATED,
    ),
    (
        "template from session",
        lambda w: ("POST", "/api/v1/templates/from-session", {"json": {"session_id": w.done}}),
        OWNED_CREATED | {"worker": 201},
    ),
    ("search templates", lambda w: ("GET", "/api/v1/templates", {"params": {"q": "T"}}), ANY_USER),
    ("project templates", lambda w: ("GET", f"/api/v1/projects/{w.project}/templates", {}), OWNED),
    ("get template", lambda w: ("GET", f"/api/v1/templates/{w.template}", {}), OWNED),
    (
        "update template",
        lambda w: ("PATCH", f"/api/v1/templates/{w.template}", {"json": {"name": "U"}}),
        OWNED,
    ),
    (
        "delete template",
        lambda w: ("DELETE", f"/api/v1/templates/{w.template}", {}),
        OWNED_NO_CONTENT,
    ),
    ("versions", lambda w: ("GET", f"/api/v1/templates/{w.template}/versions", {}), OWNED),
    ("version", lambda w: ("GET", f"/api/v1/templates/{w.template}/versions/1.0.0", {}), OWNED),
    (
        "diff",
        lambda w: (
            "GET",
            f"/api/v1/templates/{w.template}/diff",
            {"params": {"from": "1.0.0", "to": "1.0.0"}},
        ),
        OWNED,
    ),
    (
        "rollback",
        lambda w: (
            "POST",
            f"/api/v1/templates/{w.template}/rollback",
            {"json": {"version": "1.0.0"}},
        ),
        OWNED,
    ),
    (
        "submit for review",
        lambda w: (
            "POST",
            f"/api/v1/templates/{w.template}/status",
            {"json": {"status": "REVIEW"}},
        ),
        OWNED,
    ),
    (
        "approve",
        lambda w: (
            "POST",
            f"/api/v1/templates/{w.in_review}/status",
            {"json": {"status": "APPROVED"}},
        ),
        {"anonymous": 401, "other": 404, "owner": 403, "expert": 200, "admin": 200, "worker": 403},
    ),
    ("reviewable: get", lambda w: ("GET", f"/api/v1/templates/{w.in_review}", {}), REVIEWABLE_READ),
    (
        "reviewable: versions",
        lambda w: ("GET", f"/api/v1/templates/{w.in_review}/versions", {}),
        REVIEWABLE_READ,
    ),
    (
        "reviewable: diff",
        lambda w: (
            "GET",
            f"/api/v1/templates/{w.in_review}/diff",
            {"params": {"from": "1.0.0", "to": "1.0.0"}},
        ),
        REVIEWABLE_READ,
    ),
    (
        "reviewable: update",
        lambda w: ("PATCH", f"/api/v1/templates/{w.in_review}", {"json": {"name": "U"}}),
        REVIEWABLE_CHANGE,
    ),
    (
        "reviewable: rollback",
        lambda w: (
            "POST",
            f"/api/v1/templates/{w.in_review}/rollback",
            {"json": {"version": "1.0.0"}},
        ),
        REVIEWABLE_CHANGE,
    ),
    (
        "reviewable: back to draft",
        lambda w: (
            "POST",
            f"/api/v1/templates/{w.in_review}/status",
            {"json": {"status": "DRAFT"}},
        ),
        REVIEWABLE_CHANGE,
    ),
    (
        "reviewable: delete",
        lambda w: ("DELETE", f"/api/v1/templates/{w.in_review}", {}),
        OWNED_NO_CONTENT | {"expert": 403},
    ),
    (
        "reviewable: export module",
        lambda w: ("POST", f"/api/v1/templates/{w.in_review}/export", {"json": {}}),
        REVIEWABLE_READ,
    ),
    (
        "check module",
        lambda w: ("POST", f"/api/v1/templates/{w.template}/check", {}),
        OWNED,
    ),
    (
        "record the check's score",
        lambda w: (
            "POST",
            f"/api/v1/templates/{w.in_review}/check",
            {"params": {"record": "true"}},
        ),
        {"anonymous": 401, "other": 404, "owner": 200, "expert": 403, "admin": 200, "worker": 403},
    ),
    (
        "export module",
        lambda w: ("POST", f"/api/v1/templates/{w.template}/export", {"json": {}}),
        OWNED,
    ),
]


@pytest.mark.parametrize(("name", "request_for", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
async def test_authorization_matrix(
    client: httpx.AsyncClient,
    make_caller: MakeCaller,
    name: str,
    request_for: Request,
    expected: dict[str, int],
) -> None:
    other = await make_caller()
    expert = await make_caller(UserRole.EXPERT)
    admin = await make_caller(UserRole.ADMIN)
    worker = await make_caller(UserRole.ADMIN, scopes=("worker",))
    got: dict[str, int] = {}
    for role in ROLES:
        world = await build_world(client, make_caller)
        callers = {
            "other": other,
            "owner": world.owner,
            "expert": expert,
            "admin": admin,
            "worker": worker,
        }
        caller = callers.get(role)
        method, path, kwargs = request_for(world)
        headers = caller.headers if caller else {}
        response = await client.request(method, path, headers=headers, **kwargs)
        got[role] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", (
                role,
                response.text,
            )
    assert got == expected


def test_every_api_operation_has_a_row_in_the_matrix() -> None:
    import re

    from templator.app import create_app

    fake = World(Caller("u", "u@example.com", UserRole.USER, "t"), *("x",) * 9)
    covered = {(method, path) for method, path, _ in (r(fake) for _, r, _ in MATRIX)}
    missing = []
    for template, operations in create_app().openapi()["paths"].items():
        if not template.startswith("/api/v1/"):
            continue
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method in operations:
            if not any(m == method.upper() and pattern.match(p) for m, p in covered):
                missing.append(f"{method.upper()} {template}")
    assert not missing, f"endpoints without an authorization row: {missing}"
