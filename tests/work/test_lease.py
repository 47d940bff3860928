"""Leases: every worker write carries the lease; a lost, stale, foreign or missing lease is
refused with its own code and changes nothing; heartbeats extend and carry cancellation;
retries, rescue and release keep every attempt."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from templator.connections import Connections
from templator.kit.uow import unit_of_work
from templator.work.rescuer import rescue_once
from tests.work.conftest import Queue

PHASE = {"phase": "section_detection", "payload": {"sections": ["hero"]}, "progress": 0.4}


async def _claimed(queue: Queue, **body: Any) -> tuple[str, str]:
    created = await queue.create(**body)
    claim = (await queue.claim())[0]
    assert claim["session"]["id"] == created["id"]
    return created["id"], claim["lease"]["token"]


async def _expire(conns: Connections, session_id: str) -> None:
    """The lease runs out (as if no heartbeat came for its whole length)."""
    async with unit_of_work(conns.sessionmaker, conns.cache) as session:
        await session.execute(
            text("UPDATE ai_sessions SET lease_expires_at = now() - interval '1 s' WHERE id = :id"),
            {"id": session_id},
        )


def _code(response: Any) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    code: str = response.json()["code"]
    return code


async def test_a_write_under_the_lease_goes_through(queue: Queue) -> None:
    session_id, lease = await _claimed(queue)

    phase = await queue.write("POST", f"/sessions/{session_id}/phases", lease, json=PHASE)
    logs = await queue.write(
        "POST",
        f"/sessions/{session_id}/logs",
        lease,
        json={"lines": [{"phase": "section_detection", "message": "found 1"}]},
    )
    done = await queue.write("POST", f"/sessions/{session_id}/complete", lease, json={})

    assert (phase.status_code, logs.status_code, done.status_code) == (200, 201, 200)
    attempts = (await queue.get(f"/sessions/{session_id}/attempts"))["items"]
    assert [a["outcome"] for a in attempts] == ["completed"]
    assert attempts[0]["ended_at"] is not None


async def test_writes_without_or_with_a_wrong_lease_are_refused_and_change_nothing(
    queue: Queue,
) -> None:
    session_id, lease = await _claimed(queue)
    other_id, other_lease = await _claimed(queue)
    cases = [
        (None, "lease_required"),
        ("garbage", "lease_invalid"),
        (other_lease, "lease_invalid"),
        ("x" * 500, "lease_invalid"),
    ]
    for sent, code in cases:
        for method, path, body in [
            ("POST", f"/sessions/{session_id}/phases", PHASE),
            (
                "POST",
                f"/sessions/{session_id}/logs",
                {"lines": [{"phase": "upload", "message": "m"}]},
            ),
            ("POST", f"/sessions/{session_id}/complete", {}),
            ("POST", f"/sessions/{session_id}/fail", {"error": {"m": "x"}}),
        ]:
            response = await queue.write(method, path, sent, json=body)
            assert response.status_code == 409, (sent, path, response.text)
            assert _code(response) == code, (sent, path)
    # The owner without the lease is refused too while a worker holds the session.
    owner = await queue.client.post(
        f"/api/v1/sessions/{session_id}/phases", json=PHASE, headers=queue.owner.headers
    )
    assert _code(owner) == "lease_required"
    session = await queue.get(f"/sessions/{session_id}")
    assert (session["status"], session["progress"], session["sections"]) == ("PROCESSING", 0, None)
    logs = await queue.get(f"/sessions/{session_id}/logs")
    assert logs["items"] == []
    assert other_id != session_id and lease != other_lease


async def test_an_expired_lease_is_refused_as_expired(
    queue: Queue, work_connections: Connections
) -> None:
    session_id, lease = await _claimed(queue)
    await _expire(work_connections, session_id)

    phase = await queue.write("POST", f"/sessions/{session_id}/phases", lease, json=PHASE)
    beat = await queue.write("POST", f"/work/{session_id}/heartbeat", lease, json={})

    assert _code(phase) == "lease_expired" and _code(beat) == "lease_expired"
    assert (await queue.get(f"/sessions/{session_id}"))["progress"] == 0


async def test_a_rescued_sessions_old_lease_is_lost_and_the_new_holders_work_stands(
    queue: Queue, work_connections: Connections
) -> None:
    session_id, old = await _claimed(queue)
    await _expire(work_connections, session_id)

    assert await rescue_once(work_connections) == 1
    rescued = await queue.get(f"/sessions/{session_id}")
    again = (await queue.claim(worker="w2"))[0]
    new = again["lease"]["token"]
    mine = await queue.write("POST", f"/sessions/{session_id}/phases", new, json=PHASE)
    late = await queue.write(
        "POST", f"/sessions/{session_id}/complete", old, json={"final_result": {"x": 1}}
    )

    assert rescued["status"] == "PENDING" and rescued["worker"] is None
    assert again["attempt"] == 2 and again["session"]["worker"] == "w2"
    assert mine.status_code == 200
    assert late.status_code == 409 and _code(late) == "lease_lost"
    session = await queue.get(f"/sessions/{session_id}")
    assert session["status"] == "PROCESSING" and session["final_result"] is None
    attempts = (await queue.get(f"/sessions/{session_id}/attempts"))["items"]
    assert [(a["attempt"], a["worker"], a["outcome"]) for a in attempts] == [
        (1, "w1", "lease_expired"),
        (2, "w2", "running"),
    ]
    assert attempts[0]["error"]["code"] == "lease_expired"


async def test_the_last_attempts_expiry_fails_the_session(
    queue: Queue, work_connections: Connections
) -> None:
    session_id, _ = await _claimed(queue, max_attempts=1)
    await _expire(work_connections, session_id)

    await rescue_once(work_connections)

    session = await queue.get(f"/sessions/{session_id}")
    assert session["status"] == "FAILED" and session["error_log"]["code"] == "lease_expired"
    assert await queue.claim() == []


async def test_heartbeats_extend_the_lease_and_tell_the_worker_of_a_cancel(queue: Queue) -> None:
    session_id, lease = await _claimed(queue)
    before = (await queue.get(f"/sessions/{session_id}"))["lease_expires_at"]

    beat = await queue.write(
        "POST", f"/work/{session_id}/heartbeat", lease, json={"lease_seconds": 600}
    )
    cancel = await queue.client.post(
        f"/api/v1/sessions/{session_id}/cancel", headers=queue.owner.headers
    )
    after_cancel = await queue.write("POST", f"/work/{session_id}/heartbeat", lease, json={})
    write = await queue.write("POST", f"/sessions/{session_id}/phases", lease, json=PHASE)

    assert beat.status_code == 200 and beat.json()["cancelled"] is False
    assert beat.json()["expires_at"] > before
    assert cancel.status_code == 200
    assert after_cancel.status_code == 200
    assert after_cancel.json() == {"expires_at": None, "cancelled": True}
    assert write.status_code == 409 and _code(write) == "session_finished"
    attempts = (await queue.get(f"/sessions/{session_id}/attempts"))["items"]
    assert [a["outcome"] for a in attempts] == ["cancelled"]


async def test_a_heartbeat_on_a_finished_session_is_refused(queue: Queue) -> None:
    session_id, lease = await _claimed(queue)
    await queue.write("POST", f"/sessions/{session_id}/complete", lease, json={})

    beat = await queue.write("POST", f"/work/{session_id}/heartbeat", lease, json={})
    none = await queue.write("POST", f"/work/{session_id}/heartbeat", None, json={})

    assert beat.status_code == 409 and _code(beat) == "session_finished"
    assert none.status_code == 409 and _code(none) == "lease_required"


async def test_a_retryable_failure_returns_the_session_and_keeps_each_error(queue: Queue) -> None:
    session_id, lease = await _claimed(queue, max_attempts=2)

    first = await queue.write(
        "POST",
        f"/sessions/{session_id}/fail",
        lease,
        json={"error": {"message": "model timed out"}, "retryable": True},
    )
    queued = await queue.get(f"/sessions/{session_id}")
    again = (await queue.claim(worker="w2"))[0]
    second = await queue.write(
        "POST",
        f"/sessions/{session_id}/fail",
        again["lease"]["token"],
        json={"error": {"message": "still down"}, "retryable": True},
    )

    assert first.json()["status"] == "PENDING"
    assert queued["next_attempt_at"] is not None and queued["worker"] is None
    assert again["attempt"] == 2
    assert second.json()["status"] == "FAILED"  # no attempts left
    attempts = (await queue.get(f"/sessions/{session_id}/attempts"))["items"]
    assert [(a["worker"], a["outcome"], a["error"]) for a in attempts] == [
        ("w1", "retry", {"message": "model timed out"}),
        ("w2", "failed", {"message": "still down"}),
    ]


async def test_a_final_failure_is_not_retried(queue: Queue) -> None:
    session_id, lease = await _claimed(queue)

    failed = await queue.write(
        "POST", f"/sessions/{session_id}/fail", lease, json={"error": {"message": "bad design"}}
    )

    assert failed.json()["status"] == "FAILED"
    assert await queue.claim() == []


async def test_a_released_session_is_claimable_at_once_and_its_attempt_does_not_count(
    queue: Queue,
) -> None:
    session_id, lease = await _claimed(queue, max_attempts=1)

    released = await queue.write("POST", f"/work/{session_id}/release", lease)
    again = (await queue.claim(worker="w2"))[0]
    stale = await queue.write("POST", f"/work/{session_id}/release", lease)

    assert released.status_code == 200 and released.json()["status"] == "PENDING"
    assert again["attempt"] == 1 and again["session"]["id"] == session_id
    assert stale.status_code == 409 and _code(stale) == "lease_lost"
    attempts = (await queue.get(f"/sessions/{session_id}/attempts"))["items"]
    assert [a["outcome"] for a in attempts] == ["released", "running"]


async def test_recording_a_phase_on_a_pending_session_does_not_start_it(queue: Queue) -> None:
    """Issue #24: a phase recorded on a PENDING session silently started it."""
    created = await queue.create()

    response = await queue.client.post(
        f"/api/v1/sessions/{created['id']}/phases", json=PHASE, headers=queue.owner.headers
    )

    assert response.status_code == 409 and _code(response) == "invalid_session_transition"
    session = await queue.get(f"/sessions/{created['id']}")
    assert (session["status"], session["started_at"], session["sections"]) == (
        "PENDING",
        None,
        None,
    )


async def test_the_upload_phase_keeps_the_web_apps_input_data(queue: Queue) -> None:
    """Issue #24: the upload phase overwrote the web app's input_data."""
    session_id, lease = await _claimed(queue, input_data={"brief": "hero", "file": "a.html"})

    response = await queue.write(
        "POST",
        f"/sessions/{session_id}/phases",
        lease,
        json={"phase": "upload", "payload": {"file": "other", "pages": 2}, "progress": 0.1},
    )
    not_object = await queue.write(
        "POST",
        f"/sessions/{session_id}/phases",
        lease,
        json={"phase": "upload", "payload": [1], "progress": 0.1},
    )

    assert response.status_code == 200
    assert not_object.status_code == 200
    session = await queue.get(f"/sessions/{session_id}")
    assert session["input_data"] == {"brief": "hero", "file": "a.html", "pages": 2, "upload": [1]}
