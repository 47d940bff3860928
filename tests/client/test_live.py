"""`templator worker` and the blocking `Client` against `templator serve` in a subprocess."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from templator.ai_session.schemas import AiSessionCreate
from templator.client import ApiError, Client
from templator.config import PROJECT_ROOT
from templator.models import SessionStatus
from templator.project.schemas import ProjectCreate
from tests.api.conftest import LiveApi

TEMPLATOR = str(Path(sys.executable).parent / "templator")
DESIGN = (PROJECT_ROOT / "src/templator/dev/demo/design.html").read_bytes()


def _cli(live_api: LiveApi, *args: str) -> str:
    done = subprocess.run(
        [TEMPLATOR, *args], env=live_api.env, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture(scope="module")
def worker_token_file(live_api: LiveApi, tmp_path_factory: pytest.TempPathFactory) -> Path:
    email = f"worker-{time.time_ns()}@example.com"
    _cli(live_api, "user", "create", "--email", email, "--role", "ADMIN", "--json")
    token = json.loads(
        _cli(live_api, "token", "create", "--user", email, "--scope", "worker", "--json")
    )
    path = tmp_path_factory.mktemp("worker") / "token"
    path.write_text(token["token"])
    return path


def _wait_final(client: Client, session_ids: list[str], seconds: float = 60) -> dict[str, str]:
    """Each session's status once all are final (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        states = {sid: client.session_state(sid).status for sid in session_ids}
        pending = (SessionStatus.PENDING, SessionStatus.PROCESSING)
        if not any(s in pending for s in states.values()) or time.monotonic() > deadline:
            return {sid: s.value for sid, s in states.items()}
        time.sleep(0.2)


def test_the_reference_worker_turns_designs_into_templates_and_stops_on_sigterm(
    live_api: LiveApi, worker_token_file: Path
) -> None:
    token = live_api.headers["Authorization"].removeprefix("Bearer ")
    with Client(live_api.url, token) as web:
        project = web.create_project(ProjectCreate(name="Live"))
        sessions = []
        for _ in range(3):
            draft = web.create_session(AiSessionCreate(project_id=project.id, draft=True))
            web.upload_design(draft.id, DESIGN, filename="design.html", content_type="text/html")
            web.submit_session(draft.id)
            sessions.append(draft.id)
        process = subprocess.Popen(
            [
                TEMPLATOR,
                "worker",
                "--url",
                live_api.url,
                "--token-file",
                str(worker_token_file),
                "--concurrency",
                "2",
                "--json",
                "--name",
                "live-1",
            ],
            env=live_api.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            final = _wait_final(web, sessions)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert set(final.values()) == {"COMPLETED"}, final
        counts = json.loads(out.strip().splitlines()[-1])
        assert counts["completed"] >= 3 and counts["worker"] == "live-1"
        done = web.get_session(sessions[0])
        kinds = [s["kind"] for s in done.sections["sections"]]
        assert kinds == ["header", "hero", "features", "pricing", "footer"]
        assert done.ai_analysis["stand_in"] is True
        [attempt] = web.attempts(sessions[0]).items
        assert attempt.worker == "live-1" and attempt.outcome == "completed"


def test_a_worker_without_a_worker_token_exits_with_one_line(
    live_api: LiveApi, tmp_path: Path
) -> None:
    user_token = tmp_path / "token"
    user_token.write_text(live_api.headers["Authorization"].removeprefix("Bearer "))
    done = subprocess.run(
        [TEMPLATOR, "worker", "--url", live_api.url, "--token-file", str(user_token), "-q"],
        env=live_api.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "403" in done.stderr


def test_the_blocking_client_raises_api_errors(live_api: LiveApi) -> None:
    token = live_api.headers["Authorization"].removeprefix("Bearer ")
    with Client(live_api.url, token) as web, pytest.raises(ApiError) as caught:
        web.get_session("b" * 25)
    assert caught.value.code == "session_not_found"
