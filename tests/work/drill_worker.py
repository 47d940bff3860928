"""A worker process of the drills (tests/work/test_drills.py): claims sessions over HTTP,
heartbeats, records a phase, and completes (with its template, `POST /work/{id}/complete`)
or fails each at random; prints what it did as one JSON line. Modes: `run` (until the
queue stays empty), `hold` (claim one session, print it, then sleep; SIGSTOP/SIGCONT or
kill -9 it from outside, then it writes late)."""

from __future__ import annotations

import json
import random
import sys
import time

import httpx

PHASE = {"phase": "section_detection", "payload": {"sections": ["hero"]}, "progress": 0.5}
COMPLETE = {
    "quality_score": 0.9,
    "final_result": {
        "name": "Drill module",
        "html": "<h2>{{ module.title }}</h2>",
        "hubspot_config": {
            "meta": {"label": "Drill", "content_types": ["SITE_PAGE"], "global": False},
            "fields": [{"name": "title", "label": "Title", "type": "text", "default": "Hi"}],
        },
    },
    "template": {"tags": ["drill"]},
}


def _claim(
    client: httpx.Client, name: str, *, limit: int, wait: float, lease: int
) -> list[dict] | None:
    """The claims, or None when the API answered 5xx (the database restarting)."""
    response = client.post(
        "/api/v1/work/claim",
        json={"worker": name, "limit": limit, "wait": wait, "lease_seconds": lease},
    )
    if response.status_code >= 500:
        time.sleep(0.2)
        return None
    response.raise_for_status()
    items: list[dict] = response.json()["items"]
    return items


def _post(client: httpx.Client, path: str, token: str, body: dict) -> httpx.Response:
    return client.post(path, json=body, headers={"Lease-Token": token})


def run(
    client: httpx.Client, name: str, seed: int, idle_rounds: int, lease: int = 30
) -> dict[str, object]:
    rng = random.Random(seed)
    done: dict[str, list[str]] = {"completed": [], "failed": [], "retry": []}
    unexpected: list[str] = []
    idle = 0
    while idle < idle_rounds:
        try:
            claims = _claim(client, name, limit=2, wait=1.0, lease=lease)
        except httpx.HTTPError:
            time.sleep(0.2)
            continue
        if claims is None:
            continue  # an outage is not an empty queue
        idle = 0 if claims else idle + 1
        for claim in claims:
            sid, token = claim["session"]["id"], claim["lease"]["token"]
            try:
                beat = _post(client, f"/api/v1/work/{sid}/heartbeat", token, {})
                phase = _post(client, f"/api/v1/sessions/{sid}/phases", token, PHASE)
                roll = rng.random()
                if roll < 0.15:
                    kind, end = "retry", {"error": {"message": "model timeout"}, "retryable": True}
                    path = f"/api/v1/sessions/{sid}/fail"
                elif roll < 0.2:
                    kind, end = "failed", {"error": {"message": "bad design"}}
                    path = f"/api/v1/sessions/{sid}/fail"
                else:  # completed with its template, in one transaction
                    kind, end, path = "completed", COMPLETE, f"/api/v1/work/{sid}/complete"
                finish = _post(client, path, token, end)
            except httpx.HTTPError as exc:
                unexpected.append(f"{sid}: {exc!r}")
                continue
            if beat.status_code != 200 or phase.status_code not in (200, 409):
                unexpected.append(f"{sid}: heartbeat {beat.status_code}, phase {phase.text}")
            if finish.status_code != 200:
                unexpected.append(f"{sid}: {kind} answered {finish.status_code} {finish.text}")
                continue
            answer = finish.json()
            status = answer["session"]["status"] if kind == "completed" else answer["status"]
            if kind == "completed" and (answer["template"] or {}).get("session_id") != sid:
                unexpected.append(f"{sid}: completed without its template: {finish.text}")
            done[
                "completed"
                if status == "COMPLETED"
                else "retry"
                if status == "PENDING"
                else "failed"
            ].append(sid)
    return {"worker": name, **done, "unexpected": unexpected}


def hold(client: httpx.Client, name: str, pause: float) -> None:
    claims: list[dict] | None = []
    while not claims:
        claims = _claim(client, name, limit=1, wait=5, lease=5)
    sid, token = claims[0]["session"]["id"], claims[0]["lease"]["token"]
    print(json.dumps({"session": sid}), flush=True)
    time.sleep(pause)  # stopped (SIGSTOP) or killed (SIGKILL) meanwhile
    late = [
        _post(client, f"/api/v1/sessions/{sid}/phases", token, PHASE),
        _post(client, f"/api/v1/sessions/{sid}/complete", token, {}),
        _post(client, f"/api/v1/work/{sid}/complete", token, COMPLETE),
        _post(client, f"/api/v1/work/{sid}/heartbeat", token, {}),
    ]
    print(json.dumps({"late": [[r.status_code, r.json().get("code")] for r in late]}), flush=True)


def main() -> None:
    mode, url, token, name = sys.argv[1:5]
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        if mode == "run":
            lease = int(sys.argv[7]) if len(sys.argv) > 7 else 30
            seed, idle = int(sys.argv[5]), int(sys.argv[6])
            print(json.dumps(run(client, name, seed=seed, idle_rounds=idle, lease=lease)))
        else:
            hold(client, name, pause=float(sys.argv[5]))


if __name__ == "__main__":
    main()
