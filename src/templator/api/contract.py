"""The OpenAPI document as the contract: every status an operation can answer, with codes.

The endpoints name their own problems (`responses_for(TemplateNotFound, …)`); what every
operation of the API can answer is added here, once, so no endpoint can forget it:
401 and 429 (every /api/v1 operation needs a token, and failed authentication is rate
limited), 422 (parameters and bodies are validated), 503 (each one uses PostgreSQL), and
400/413 for operations with a body. Problems are `application/problem+json` only.
`tests/api/test_contract.py` runs schemathesis with every check against the result.
"""

from __future__ import annotations

from typing import Any

from templator.api.problems import PROBLEM_JSON, PROBLEM_SCHEMA, Problem, title_of
from templator.auth.schemas import DEFAULT_TOKEN_DAYS
from templator.config import Settings
from templator.hubspot.schemas import HubSpotConfig
from templator.kit.validation import JSON_VALUE_SCHEMA, storable_schema

API_PREFIX = "/api/v1/"
BEARER = "bearer"

EVERY_OPERATION: dict[int, tuple[str, ...]] = {
    401: ("unauthorized",),
    422: ("validation_failed",),
    429: ("rate_limited",),
    503: ("busy", "database_unavailable"),
}
"""Problems any /api/v1 operation can answer, whatever it does."""
JSON_BODY: dict[int, tuple[str, ...]] = {
    400: ("malformed_json", "bad_request"),
    413: ("payload_too_large",),
}
UPLOAD_BODY: dict[int, tuple[str, ...]] = {
    400: ("bad_request",),
    413: ("upload_too_large",),
}

SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["state", "progress"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
"""One Server-Sent Event as schemathesis and other SSE-aware tools read it."""


def _problem(response: dict[str, Any], status: int, codes: list[str]) -> None:
    """Make `response` a problem+json response listing `codes` by name."""
    response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}
    response["x-problem-codes"] = codes
    names = ", ".join(f"`{code}`" for code in codes)
    response["description"] = f"{title_of(status)}: {names}" if codes else title_of(status)


def _add(responses: dict[str, Any], status: int, codes: tuple[str, ...]) -> None:
    response = responses.setdefault(str(status), {})
    listed = list(response.get("x-problem-codes", []))
    listed += [code for code in codes if code not in listed]
    _problem(response, status, listed)


def _shape_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = {str(k): v for k, v in operation.get("responses", {}).items()}
    operation["responses"] = responses
    operation["security"] = [{BEARER: []}]
    body = operation.get("requestBody", {}).get("content", {})
    extra = {**EVERY_OPERATION}
    if "application/json" in body:
        extra |= JSON_BODY
    if "multipart/form-data" in body:
        extra |= UPLOAD_BODY
    for status, codes in extra.items():
        _add(responses, status, codes)
    for key, response in responses.items():
        if key.isdigit() and int(key) >= 400 and "x-problem-codes" not in response:
            _problem(response, int(key), [])
    for response in responses.values():
        stream = response.get("content", {}).get("text/event-stream")
        if stream is not None:
            stream["schema"] = SSE_EVENT


def _deployment_limits(schemas: dict[str, Any], settings: Settings) -> None:
    """Limits this deployment's settings put on request bodies, beyond what the models say.

    A token's lifetime: `TokenCreate` admits 1-3650 days or none (no expiry) for callers
    inside the process, but over HTTP the service refuses more than TOKEN_MAX_DAYS, and
    none at all (`auth.service`).
    """
    token = schemas.get("TokenCreate", {}).get("properties", {})
    if "expires_days" in token:
        token["expires_days"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": settings.token_max_days,
            "default": min(DEFAULT_TOKEN_DAYS, settings.token_max_days),
            "title": "Expires Days",
            "description": "Days until the token expires, at most TOKEN_MAX_DAYS",
        }


def shape_openapi(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Complete FastAPI's document in place: problems, security, SSE events and this
    deployment's limits; return it."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    _deployment_limits(schemas, settings)
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schemas["Problem"].pop("$defs", {}))
    hubspot = HubSpotConfig.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = hubspot.pop("$defs", {})
    for model in (hubspot, *defs.values()):
        storable_schema(model)  # it arrives inside a RequestModel, with the same text rules
    if "ModuleMeta" in defs:
        # ModuleMeta's own rule (hubspot.schemas), which pydantic cannot put in a schema.
        defs["ModuleMeta"]["anyOf"] = [
            {"required": [name], "properties": {name: {"type": "array", "minItems": 1}}}
            for name in ("content_types", "host_template_types")
        ]
    schemas.update(defs)
    schemas["HubSpotConfig"] = hubspot
    schemas["JsonValue"] = JSON_VALUE_SCHEMA
    # FastAPI's own 422 body is replaced by Problem everywhere.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `tpl_<prefix>_<secret>` (docs/api.md)",
        }
    }
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            _shape_operation(operation)
    return schema
