"""POST /api/v1/templates/{id}/check and the check on DRAFT → REVIEW, over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from templator.app import create_app
from tests.api.conftest import Caller

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
CONFIG = {
    "meta": {"label": "Hero", "content_types": ["SITE_PAGE"]},
    "fields": [
        {"name": "title", "label": "Title", "type": "text"},
        {"name": "photo", "label": "Photo", "type": "image", "default": {"src": "a.png"}},
    ],
}


async def _template(client: httpx.AsyncClient, owner: Caller, html: str) -> str:
    h = owner.headers
    project = (await client.post("/api/v1/projects", json={"name": "P"}, headers=h)).json()
    body = {"project_id": project["id"], "name": "Hero", "html_content": html}
    response = await client.post(
        "/api/v1/templates", json=body | {"hubspot_config": CONFIG}, headers=h
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_check_lists_findings_and_review_is_refused_until_fixed(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    h = owner.headers
    tid = await _template(client, owner, "{% if module.titel %}<img src='{{ module.photo.src }}'>")
    report = (await client.post(f"/api/v1/templates/{tid}/check", headers=h)).json()
    assert report["ok"] is False and report["errors"] == 2 and report["warnings"] == 2
    assert {f["code"] for f in report["findings"]} == {
        "unknown_field",
        "unbalanced_tag",
        "unused_field",
        "image_alt_missing",
    }
    refused = await client.post(
        f"/api/v1/templates/{tid}/status", json={"status": "REVIEW"}, headers=h
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "module_check_failed"
    assert "module.html:1: module.titel: there is no field 'titel'" in problem["detail"]

    fixed = "{% if module.title %}<img src='{{ module.photo.src }}'>{% endif %}"
    patched = await client.patch(
        f"/api/v1/templates/{tid}", json={"html_content": fixed}, headers=h
    )
    assert patched.status_code == 200, patched.text
    moved = await client.post(
        f"/api/v1/templates/{tid}/status", json={"status": "REVIEW"}, headers=h
    )
    assert moved.status_code == 200, moved.text


async def test_record_stores_the_score_as_quality_score(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    h = owner.headers
    tid = await _template(client, owner, "<h1>{{ module.title }}</h1>")
    report = (
        await client.post(f"/api/v1/templates/{tid}/check", params={"record": "true"}, headers=h)
    ).json()
    assert report["score"] == 0.9  # two warnings: photo unused, photo without alt text
    template = (await client.get(f"/api/v1/templates/{tid}", headers=h)).json()
    assert template["quality_score"] == 0.9 and template["version"] == "1.0.1"


def test_the_check_endpoint_is_in_the_openapi_document_with_its_problems() -> None:
    operation = create_app().openapi()["paths"]["/api/v1/templates/{template_id}/check"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["404"]["content"]
    status = create_app().openapi()["paths"]["/api/v1/templates/{template_id}/status"]["post"]
    assert "module_check_failed" in status["description"]
