"""The failed-authentication limit counts the real client and never refuses a valid
token (issue #21, finding 3), through `templator serve` as it runs: uvicorn used to trust
X-Forwarded-For from any local process, so a forged header aimed the limit at another
address (and a different one dodged it), and a limited address was refused whatever it
sent, its valid tokens included."""

from __future__ import annotations

import secrets

import httpx

from tests.api.conftest import LiveApi

LIMIT = 20
LIVE_API_ENV = {"AUTH_FAILURE_LIMIT": str(LIMIT), "AUTH_FAILURE_WINDOW_SECONDS": "600"}
"""No API_FORWARDED_ALLOW_IPS: no proxy is trusted, as by default."""
VALID_READS = [
    "/api/v1/users/me",
    "/api/v1/projects",
    "/api/v1/tokens",
    "/api/v1/templates",
    "/api/v1/templates?q=hero",
]


def _bad_token() -> str:
    return f"tpl_{secrets.token_hex(6)}_{secrets.token_urlsafe(32).replace('_', '-')}"


def _bad_credentials(valid: str) -> list[dict[str, str]]:
    """What a fuzzer sends: malformed, unknown, the right prefix with a wrong secret."""
    prefix = valid.split("_")[1]
    return [
        {"Authorization": "Bearer x"},
        {"Authorization": f"Bearer {_bad_token()}"},
        {"Authorization": f"Bearer tpl_{prefix}_{'y' * 43}"},
        {"Authorization": "Bearer tpl__"},
    ]


def test_a_forged_forwarded_for_neither_dodges_nor_aims_the_limit(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url, timeout=10) as http:
        for n in range(LIMIT + 1):
            spoofed = {"X-Forwarded-For": f"203.0.113.{n + 1}"}  # a new "client" each time
            http.get(
                "/api/v1/users/me", headers={**spoofed, "Authorization": f"Bearer {_bad_token()}"}
            )
        # The peer (loopback) is what was counted: one more bad token from it is limited,
        # whatever address its header claims.
        dodge = http.get(
            "/api/v1/users/me",
            headers={"X-Forwarded-For": "198.51.100.9", "Authorization": f"Bearer {_bad_token()}"},
        )
        assert dodge.status_code == 429, dodge.text
        assert dodge.json()["code"] == "rate_limited"
        assert int(dodge.headers["retry-after"]) >= 1


def test_a_burst_of_invalid_credentials_never_limits_a_valid_token(live_api: LiveApi) -> None:
    valid = live_api.headers["Authorization"].removeprefix("Bearer ")
    with httpx.Client(base_url=live_api.url, timeout=10) as http:
        refused = [
            http.get(path, headers=bad).status_code
            for _ in range(3)
            for bad in _bad_credentials(valid)
            for path in VALID_READS[:2]
        ]
        assert set(refused) <= {401, 429} and 429 in refused  # the address is limited
        answers = {path: http.get(path, headers=live_api.headers) for path in VALID_READS}
        for path, answer in answers.items():
            assert answer.status_code == 200, (path, answer.status_code, answer.text)
        created = http.post("/api/v1/projects", json={"name": "still me"}, headers=live_api.headers)
        assert created.status_code == 201, created.text
        still_bad = http.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {_bad_token()}"}
        )
        assert still_bad.status_code == 429
