"""The OpenAPI document is the contract: schemathesis with every check finds nothing.

`schemathesis run --checks all` (status codes, content types, headers and response
schemas conform; schema-valid data is accepted and schema-invalid data refused; 405 with
`Allow` for undeclared methods; no 5xx) over every operation of the served document,
positive and negative data, once with a USER's token and once with an ADMIN's. Bounded:
a few examples per operation and a fixed seed, so it reproduces and stays within minutes.
The hooks in `contract_hooks` make generated HubSpot configurations keep the rules that
relate two values (stated in words in the document; JSON Schema cannot state them).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jsonschema
import pytest

from templator.api.problems import PROBLEM_JSON
from templator.hubspot.config import validate_hubspot_config
from templator.hubspot.errors import InvalidHubSpotConfig
from tests.api import contract_hooks
from tests.api.conftest import Caller, LiveApi
from tests.support.factories import hubspot_config

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
# A live-progress stream stays open until its session ends; schemathesis would wait for
# each one until its request timeout.
LIVE_API_ENV = {"API_SSE_MAX_SECONDS": "2"}
# Erasing oneself or revoking one's own token ends a run's credentials: schemathesis
# reuses ids it saw in responses. Those two run last, in a pass of their own.
SELF_ENDING = "^/api/v1/(users/\\{user_id\\}|tokens/\\{token_id\\})$"
# An upload's type is sniffed from its bytes (415 when they are not what is declared),
# which no schema can state: random bytes are refused, so "schema-valid data is accepted"
# cannot hold there. Every other check runs on it, in a pass of its own.
UPLOAD = "^/api/v1/sessions/\\{session_id\\}/designs(/direct)?$"
# HubSpot's rules that relate two values, which JSON Schema cannot state (see the module).
HOOKS = str(Path(contract_hooks.__file__))


@pytest.mark.parametrize("key", ["content_types", "host_template_types"])
async def test_the_document_lists_every_name_a_module_meta_may_use(
    client: httpx.AsyncClient, key: str
) -> None:
    document = (await client.get("/openapi.json")).json()
    where = document["components"]["schemas"]["ModuleMeta"]["properties"][key]
    (array,) = [choice for choice in where["anyOf"] if choice.get("type") == "array"]
    listed = array["items"]["enum"]
    for name in listed:
        validate_hubspot_config({"meta": {"label": "Card", key: [name]}, "fields": []})
    with pytest.raises(InvalidHubSpotConfig):
        validate_hubspot_config({"meta": {"label": "Card", key: [listed[0].lower()]}})


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/api/v1/users/me", "GET, HEAD"),  # not /users/{user_id} with id "me"
        ("PATCH", "/api/v1/templates/from-session", "POST"),
        ("DELETE", "/api/v1/projects", "GET, HEAD, POST"),
    ],
)
async def test_a_method_the_path_lacks_is_405_with_the_paths_allow(
    client: httpx.AsyncClient,
    make_caller: Callable[[], Awaitable[Caller]],
    method: str,
    path: str,
    allow: str,
) -> None:
    user = await make_caller()
    answer = await client.request(method, path, json={"name": "x"}, headers=user.headers)
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allow
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["code"] == "method_not_allowed"


async def test_malformed_json_is_the_400_the_document_lists(
    client: httpx.AsyncClient, make_caller: Callable[[], Awaitable[Caller]]
) -> None:
    user = await make_caller()
    document = (await client.get("/openapi.json")).json()
    answer = await client.post(
        "/api/v1/projects",
        content=b'{"name": ',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    assert answer.json()["code"] == "malformed_json"
    listed = document["paths"]["/api/v1/projects"]["post"]["responses"]["400"]
    assert "malformed_json" in listed["x-problem-codes"]


async def test_every_problem_an_operation_lists_is_problem_json_only(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert {"401", "422", "429", "503"} <= set(responses), where
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                assert {"400", "413"} <= set(responses), where
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"] == problem, f"{where} {status}"
                    assert response["x-problem-codes"] or int(status) == 404, f"{where} {status}"


def _conforms(document: dict[str, Any], name: str, value: object) -> bool:
    """Whether `value` is valid under the document's schema component `name`."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def _meta(**extra: object) -> dict[str, Any]:
    return {**hubspot_config(), "meta": {**hubspot_config()["meta"], **extra}}


def _fields(**field: object) -> dict[str, Any]:
    return {**hubspot_config(), "fields": [{"label": "Title", "type": "text", **field}]}


REFUSED_CONFIGS = {
    "an integer past 2^53 under a key HubSpot may add": _meta(sort_weight=2**60),
    "a NUL in a key HubSpot may add": _meta(**{"x\x00": 1}),
    "a field name with a space": _fields(name="sub title"),
    "a choice that is not a [value, label] pair": _fields(
        name="size", type="choice", choices=[["s", "Small", "extra"]]
    ),
    "an integer past 2^53 in a choice": _fields(
        name="size", type="choice", choices=[[2**60, "Huge"]]
    ),
}


@pytest.mark.parametrize("config", REFUSED_CONFIGS.values(), ids=REFUSED_CONFIGS.keys())
async def test_a_hubspot_config_the_api_refuses_the_document_refuses(
    client: httpx.AsyncClient, make_caller: Callable[[], Awaitable[Caller]], config: object
) -> None:
    user = await make_caller()
    document = (await client.get("/openapi.json")).json()
    project = await client.post("/api/v1/projects", json={"name": "p"}, headers=user.headers)
    body = {"project_id": project.json()["id"], "name": "Card", "html_content": "<p></p>"}
    good = await client.post(
        "/api/v1/templates", json={**body, "hubspot_config": hubspot_config()}, headers=user.headers
    )
    assert good.status_code == 201, good.text
    assert _conforms(document, "TemplateCreate", {**body, "hubspot_config": hubspot_config()})

    answer = await client.post(
        "/api/v1/templates", json={**body, "hubspot_config": config}, headers=user.headers
    )
    assert answer.status_code == 422, answer.text
    assert not _conforms(document, "TemplateCreate", {**body, "hubspot_config": config})


def test_the_hooks_repair_only_what_relates_two_values_of_a_hubspot_config() -> None:
    fields = [
        {"name": "n", "label": "N", "type": "number", "min": 5, "max": 1, "default": 9},
        {"name": "n", "label": "C", "type": "choice", "choices": [["a", "A"]], "default": "z"},
        {"name": "o", "label": "O", "type": "text", "occurrence": {"min": 4, "max": 2}},
        {"name": "k", "label": "K", "type": "color", "default": {"color": "red"}},
        {"name": "i", "label": "I", "type": "image", "default": "a.png"},
    ]
    config = {**hubspot_config(), "fields": fields}
    with pytest.raises(InvalidHubSpotConfig):
        validate_hubspot_config(config)
    case = SimpleNamespace(body={"hubspot_config": copy.deepcopy(config)})
    repaired = contract_hooks.map_case(None, case).body["hubspot_config"]
    validate_hubspot_config(repaired)
    assert [f["name"] for f in repaired["fields"]] == ["n", "n_2", "o", "k", "i"]
    assert (repaired["fields"][0]["min"], repaired["fields"][0]["max"]) == (1, 5)
    assert repaired["fields"][2]["occurrence"] == {"min": 2, "max": 4}
    assert [f.get("default") for f in repaired["fields"]] == [None, None, None, None, None]
    kept = {**hubspot_config(), "fields": [{**fields[0], "min": 1, "max": 9}]}
    case = SimpleNamespace(body={"hubspot_config": copy.deepcopy(kept)})
    assert contract_hooks.map_case(None, case).body["hubspot_config"] == kept


def _token(live_api: LiveApi, role: str, name: str) -> str:
    templator = str(Path(sys.executable).parent / "templator")
    email = f"{name}@example.com"
    subprocess.run(
        [templator, "user", "create", "--email", email, "--role", role, "--json"],
        env=live_api.env,
        capture_output=True,
        check=True,
    )
    created = subprocess.run(
        [templator, "token", "create", "--user", email, "--json"],
        env=live_api.env,
        capture_output=True,
        text=True,
        check=True,
    )
    token: str = json.loads(created.stdout)["token"]
    return token


def _run(live_api: LiveApi, token: str, tmp_path: Path, *selection: str) -> int:
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{live_api.url}/openapi.json",
            "--checks",
            "all",
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "4",
            "--seed",
            "20261201",
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--no-shrink",
            "--output-truncate",
            "false",
            "--header",
            f"Authorization: Bearer {token}",
            *selection,
        ],
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": HOOKS},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", result.stdout)
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert selected and tested and selected.group(1) == tested.group(1), result.stdout[-3000:]
    return int(tested.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("role", ["USER", "ADMIN"])
def test_schemathesis_with_every_check_finds_nothing(
    live_api: LiveApi, role: str, tmp_path: Path
) -> None:
    name = f"contract-{role.lower()}-{os.getpid()}"
    token = _token(live_api, role, name)
    tested = _run(live_api, token, tmp_path, "--exclude-path-regex", f"{SELF_ENDING}|{UPLOAD}")
    tested += _run(
        live_api,
        token,
        tmp_path,
        "--include-path-regex",
        UPLOAD,
        "--exclude-checks",
        "positive_data_acceptance",
    )
    last = _token(live_api, role, f"{name}-end")
    tested += _run(live_api, last, tmp_path, "--include-path-regex", SELF_ENDING)
    operations = sum(len(methods) for path, methods in live_api.openapi()["paths"].items())
    assert tested == operations
