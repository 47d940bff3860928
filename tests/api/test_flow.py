"""The API end to end: a session from upload to exported module, over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from templator.models import UserRole
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
HTML = b"<!DOCTYPE html><html><body><section class='hero'>Hi</section></body></html>"


async def test_full_session_flow(client: httpx.AsyncClient, make_caller: MakeCaller) -> None:
    owner = await make_caller()
    expert = await make_caller(UserRole.EXPERT)
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "Acme site"}, headers=h)).json()
    session = (
        await client.post("/api/v1/sessions", json={"project_id": project["id"]}, headers=h)
    ).json()
    sid = session["id"]
    upload = await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("design.html", HTML, "text/html")},
        headers=h,
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["key"].startswith(f"designs/{sid}/")
    assert (await client.post(f"/api/v1/sessions/{sid}/start", headers=h)).status_code == 200
    for i, phase in enumerate(
        ["upload", "section_detection", "ai_analysis", "suggestions", "generation"], start=1
    ):
        payload: dict[str, Any] = {"step": phase}
        if phase == "generation":
            payload = {
                "name": "Acme hero",
                "html": "<section>{{ module.title }}</section>",
                "css": ".hero{}",
                "hubspot_config": hubspot_config("Acme hero"),
            }
        r = await client.post(
            f"/api/v1/sessions/{sid}/phases",
            json={"phase": phase, "payload": payload, "progress": i / 5},
            headers=h,
        )
        assert r.status_code == 200, r.text
    logs = [{"level": "INFO", "phase": "generation", "message": f"line {i}"} for i in range(20)]
    assert (
        await client.post(f"/api/v1/sessions/{sid}/logs", json={"lines": logs}, headers=h)
    ).json() == {"appended": 20}
    done = await client.post(
        f"/api/v1/sessions/{sid}/complete", json={"quality_score": 0.9}, headers=h
    )
    assert done.json()["status"] == "COMPLETED"
    template = (
        await client.post(
            "/api/v1/templates/from-session", json={"session_id": sid, "tags": ["hero"]}, headers=h
        )
    ).json()
    tid = template["id"]
    for name in ("Acme hero v2", "Acme hero v3"):
        assert (
            await client.patch(f"/api/v1/templates/{tid}", json={"name": name}, headers=h)
        ).status_code == 200
    versions = (await client.get(f"/api/v1/templates/{tid}/versions", headers=h)).json()
    assert [v["version"] for v in versions["items"]] == ["1.0.2", "1.0.1", "1.0.0"]
    diff = (
        await client.get(
            f"/api/v1/templates/{tid}/diff", params={"from": "1.0.0", "to": "1.0.2"}, headers=h
        )
    ).json()
    assert {f["field"] for f in diff["fields"] if f["changed"]} == {"name"}
    assert (
        await client.post(f"/api/v1/templates/{tid}/status", json={"status": "REVIEW"}, headers=h)
    ).status_code == 200
    assert (
        await client.post(f"/api/v1/templates/{tid}/status", json={"status": "APPROVED"}, headers=h)
    ).status_code == 403
    assert (
        await client.post(
            f"/api/v1/templates/{tid}/status", json={"status": "APPROVED"}, headers=expert.headers
        )
    ).status_code == 200
    export = await client.post(
        f"/api/v1/templates/{tid}/export", json={"expires_in": 600}, headers=h
    )
    assert export.status_code == 200, export.text
    async with httpx.AsyncClient() as outside:
        zipped = await outside.get(export.json()["url"])
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"
    page = (
        await client.get(
            f"/api/v1/sessions/{sid}/logs", params={"level": "INFO", "limit": 5}, headers=h
        )
    ).json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    found = (await client.get("/api/v1/templates", params={"q": "acme hero"}, headers=h)).json()
    assert tid in [t["id"] for t in found["items"]]


async def test_gdpr_export_and_erasure_leave_only_the_audit_entry(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    user = await make_caller()
    admin = await make_caller(UserRole.ADMIN)
    project = (
        await client.post("/api/v1/projects", json={"name": "Mine"}, headers=user.headers)
    ).json()
    sid = (
        await client.post(
            "/api/v1/sessions", json={"project_id": project["id"]}, headers=user.headers
        )
    ).json()["id"]
    await client.post(
        f"/api/v1/sessions/{sid}/designs",
        files={"file": ("d.html", HTML, "text/html")},
        headers=user.headers,
    )
    data = (await client.get(f"/api/v1/users/{user.id}/export", headers=user.headers)).json()
    assert data["user"]["email"] == user.email and len(data["projects"]) == 1
    assert data["objects"][0]["download_url"].startswith("http")
    erased = await client.delete(f"/api/v1/users/{user.id}", headers=admin.headers)
    assert erased.status_code == 200 and erased.json()["removed"]["objects"] == 1
    assert (await client.get(f"/api/v1/users/{user.id}", headers=admin.headers)).status_code == 404
    assert (await client.get("/api/v1/users/me", headers=user.headers)).status_code == 401
    audit = (
        await client.get("/api/v1/audit", params={"target_id": user.id}, headers=admin.headers)
    ).json()
    assert {e["action"] for e in audit["items"]} >= {"user.export", "user.erase"}


async def test_health_and_metrics_need_no_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "up"}
    ready = (await client.get("/health/ready")).json()
    assert set(ready["components"]) == {"postgres", "redis", "object_store", "schema"}
    assert "templator_http_requests_total" in (await client.get("/metrics")).text
