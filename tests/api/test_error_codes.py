"""Every domain error has a stable code of its own, answered by the API and documented."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Coroutine
from typing import Any

import httpx

import templator
from templator import exceptions
from templator.config import PROJECT_ROOT
from templator.exceptions import TemplatorError
from templator.models import UserRole
from tests.api.conftest import Caller
from tests.support.factories import hubspot_config

MakeCaller = Callable[..., Coroutine[Any, Any, Caller]]
BASES = {
    cls
    for cls in vars(exceptions).values()
    if isinstance(cls, type) and issubclass(cls, TemplatorError)
}


def _domain_errors() -> list[type[TemplatorError]]:
    for module in pkgutil.walk_packages(templator.__path__, "templator."):
        if module.name.endswith(".errors") or module.name == "templator.kit.pagination":
            importlib.import_module(module.name)
    found: list[type[TemplatorError]] = []
    stack = list(BASES)
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in found and sub not in BASES:
                found.append(sub)
                stack.append(sub)
    return found


def test_every_domain_error_has_its_own_code() -> None:
    errors = _domain_errors()
    assert len(errors) > 25
    codes = [cls.code for cls in errors]
    generic = {cls.code for cls in BASES}
    assert not [cls.__name__ for cls in errors if cls.code in generic], "generic code reused"
    assert len(set(codes)) == len(codes), sorted(c for c in codes if codes.count(c) > 1)
    assert all(re.fullmatch(r"[a-z][a-z_]+", code) for code in codes)


def test_every_code_is_in_the_table_of_docs_api_md() -> None:
    docs = (PROJECT_ROOT / "docs" / "api.md").read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `([a-z_]+)` \|", docs, re.MULTILINE)}
    missing = {cls.code for cls in _domain_errors()} - table
    assert not missing, f"codes missing from docs/api.md: {sorted(missing)}"


async def _post(client: httpx.AsyncClient, caller: Caller, path: str, body: Any) -> httpx.Response:
    return await client.post(path, json=body, headers=caller.headers)


async def test_domain_errors_answer_their_codes(
    client: httpx.AsyncClient, make_caller: MakeCaller
) -> None:
    owner = await make_caller()
    user = owner.headers
    project = (await _post(client, owner, "/api/v1/projects", {"name": "P"})).json()["id"]
    body = {"project_id": project, "name": "T", "html_content": "<p/>"}
    template = (
        await _post(client, owner, "/api/v1/templates", body | {"hubspot_config": hubspot_config()})
    ).json()["id"]
    session = (await _post(client, owner, "/api/v1/sessions", {"project_id": project})).json()["id"]
    await _post(client, owner, f"/api/v1/sessions/{session}/cancel", {})

    async def code_of(response: httpx.Response) -> str:
        assert response.headers["content-type"] == "application/problem+json", response.text
        code: str = response.json()["code"]
        return code

    missing = "a" * 25
    assert await code_of(await client.get(f"/api/v1/templates/{missing}", headers=user)) == (
        "template_not_found"
    )
    assert await code_of(await client.get(f"/api/v1/projects/{missing}", headers=user)) == (
        "project_not_found"
    )
    assert await code_of(await client.get(f"/api/v1/sessions/{missing}", headers=user)) == (
        "session_not_found"
    )
    assert await code_of(await client.get("/api/v1/users", headers=user)) == "admin_required"
    bad_cursor = await client.get("/api/v1/projects?cursor=bm90LWEtY3Vyc29y", headers=user)
    assert await code_of(bad_cursor) == "validation_failed"
    assert bad_cursor.json()["field"] == "query.cursor"
    phase = {"phase": "generation", "payload": {}, "progress": 0.5}
    assert (
        await code_of(await _post(client, owner, f"/api/v1/sessions/{session}/phases", phase))
        == "session_finished"
    )
    assert (
        await code_of(
            await _post(
                client, owner, f"/api/v1/templates/{template}/status", {"status": "PUBLISHED"}
            )
        )
        == "invalid_status_transition"
    )
    await _post(client, owner, f"/api/v1/templates/{template}/status", {"status": "REVIEW"})
    assert (
        await code_of(
            await _post(
                client, owner, f"/api/v1/templates/{template}/status", {"status": "APPROVED"}
            )
        )
        == "reviewer_role_required"
    )
    await _post(client, owner, f"/api/v1/templates/{template}/status", {"status": "ARCHIVED"})
    patch = await client.patch(f"/api/v1/templates/{template}", json={"name": "N"}, headers=user)
    assert await code_of(patch) == "template_archived"
    admin = await make_caller(UserRole.ADMIN)
    taken = await _post(client, admin, "/api/v1/users", {"email": owner.email})
    assert await code_of(taken) == "email_taken"
