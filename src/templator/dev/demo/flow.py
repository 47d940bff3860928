"""The demo story, every step an HTTP call through `templator.client`: the web app's side
(a project, draft sessions, their designs uploaded, submitted), then `templator worker`
processes working the sessions, then what happened to each.

The web app's calls are timed (`Step`); the workers are separate processes (the same
command an operator runs), given the worker credential in their environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path

from templator.ai_session.schemas import AiSessionCreate
from templator.client import ApiError, Client
from templator.models.enums import SessionStatus
from templator.project.schemas import ProjectCreate

FINAL = frozenset({SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED})


@dataclass
class Step:
    """One call of the web app's side."""

    name: str
    ms: float
    note: str = ""


@dataclass
class SessionReport:
    """What happened to one session."""

    id: str
    upload: str
    status: str
    workers: list[str]
    attempts: int
    sections: list[str]
    template_id: str | None


@dataclass
class DemoResult:
    """What the demo did."""

    project_id: str = ""
    steps: list[Step] = field(default_factory=list)
    sessions: list[SessionReport] = field(default_factory=list)
    workers: list[dict[str, object]] = field(default_factory=list)
    download_url: str | None = None
    seconds: float = 0.0


class DemoFailed(RuntimeError):
    """A call of the demo did not answer as expected."""


def design_html() -> bytes:
    """The demo's HTML design (a landing page)."""
    return resources.files("templator.dev.demo").joinpath("design.html").read_bytes()


def _timed(result: DemoResult, name: str, call: Callable[[], object], note: str = "") -> object:
    started = time.perf_counter()
    try:
        value = call()
    except ApiError as exc:
        raise DemoFailed(f"{name}: {exc}") from exc
    result.steps.append(Step(name, (time.perf_counter() - started) * 1000, note))
    return value


def web_side(client: Client, result: DemoResult, *, sessions: int) -> list[str]:
    """The web app's calls: a project, then per session a draft, its design (the first
    sent straight to the store, the others through the API), and its submission."""
    design = design_html()
    project = client.create_project(ProjectCreate(name="Acme website", description="Demo"))
    result.project_id = project.id
    ids: list[str] = []
    for n in range(sessions):
        data = AiSessionCreate(project_id=project.id, draft=True, input_data={"page": n + 1})
        draft = client.create_session(data)
        how = "direct" if n == 0 else "streamed"
        send = client.upload_design_direct if n == 0 else client.upload_design
        _timed(
            result,
            f"upload design ({how})",
            partial(send, draft.id, design, filename="design.html", content_type="text/html"),
            draft.id,
        )
        _timed(result, "submit", partial(client.submit_session, draft.id), draft.id)
        ids.append(draft.id)
    return ids


def start_workers(
    base: str,
    token: str,
    *,
    count: int,
    concurrency: int,
    env: dict[str, str] | None = None,
    name: str = "demo-worker",
    extra: tuple[str, ...] = (),
) -> list[subprocess.Popen[str]]:
    """`count` `templator worker` processes on `base` (named `name`-1…, printing their
    counts as JSON at the end), the token in their environment."""
    templator = str(Path(sys.executable).parent / "templator")
    environment = {**(env or os.environ), "TEMPLATOR_WORKER_TOKEN": token}
    return [
        subprocess.Popen(
            [
                templator,
                "worker",
                "--url",
                base,
                "--concurrency",
                str(concurrency),
                "--name",
                f"{name}-{n + 1}",
                "--json",
                *extra,
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a full pipe nobody reads would block the worker
            text=True,
        )
        for n in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    """SIGTERM each worker (it finishes or releases its sessions) and read its counts."""
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    counts: list[dict[str, object]] = []
    for process in workers:
        out, _ = process.communicate(timeout=120)
        lines = out.strip().splitlines()
        try:
            counts.append(json.loads(lines[-1]))
        except (IndexError, ValueError):
            counts.append({"worker": "?", "exit": process.returncode})
    return counts


def wait_final(
    client: Client,
    ids: list[str],
    *,
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
    alive: Callable[[], bool] = lambda: True,
) -> int:
    """Wait (bounded by `timeout`) until every session is final; how many are."""
    deadline = time.monotonic() + timeout
    left = list(ids)
    while left and time.monotonic() < deadline and alive():
        left = [sid for sid in left if client.session_state(sid).status not in FINAL]
        if on_progress is not None:
            on_progress(len(ids) - len(left))
        if left:
            time.sleep(0.25)
    return len(ids) - len(left)


def reports(client: Client, result: DemoResult, ids: list[str]) -> list[SessionReport]:
    """What happened to each session: status, workers, attempts, sections, template."""
    made = {t.session_id: t.id for t in client.project_templates(result.project_id).items}
    out: list[SessionReport] = []
    for n, sid in enumerate(ids):
        session = client.get_session(sid)
        attempts = client.attempts(sid).items
        found = session.sections.get("sections", []) if isinstance(session.sections, dict) else []
        out.append(
            SessionReport(
                id=sid,
                upload="direct" if n == 0 else "streamed",
                status=session.status.value,
                workers=[f"{a.worker}: {a.outcome}" for a in attempts],
                attempts=len(attempts),
                sections=[str(s.get("kind")) for s in found if isinstance(s, dict)],
                template_id=made.get(sid),
            )
        )
    return out


def export_first(client: Client, result: DemoResult) -> None:
    """The first template's HubSpot module, stored, with its download link."""
    first = next((r.template_id for r in result.sessions if r.template_id), None)
    if first is not None:
        export = client.export_module(first)
        result.download_url = export.url


def run_story(
    base: str,
    token: str,
    *,
    worker_token: str | None,
    sessions: int,
    workers: int,
    concurrency: int = 4,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """The whole story; `workers=0`: the web app's side only (sessions left ready for
    workers started elsewhere)."""
    result = DemoResult()
    started = time.perf_counter()
    with Client(base, token) as client:
        ids = web_side(client, result, sessions=sessions)
        if workers and worker_token:
            running = start_workers(
                base, worker_token, count=workers, concurrency=concurrency, env=env
            )
            try:
                wait_final(
                    client,
                    ids,
                    timeout=timeout,
                    on_progress=on_progress,
                    alive=lambda: any(p.poll() is None for p in running),
                )
            finally:
                result.workers = stop_workers(running)
        result.sessions = reports(client, result, ids)
        export_first(client, result)
    result.seconds = time.perf_counter() - started
    return result
