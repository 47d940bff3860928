"""The worker runtime: claim sessions (long poll), run a handler on each with the lease
heartbeating in the background, report the outcome, and stop cleanly.

* `concurrency` sessions run at once; the loop claims only as many as are free, waiting
  on the server (`wait` seconds, woken when a session becomes ready) instead of polling.
* A heartbeat every `lease_seconds / 3` extends the lease. When it answers `cancelled`
  (the owner cancelled the session) or says the lease is gone (`lease_lost`,
  `lease_expired`, `lease_invalid`, `session_finished`), the handler is cancelled and
  nothing more is written for that session.
* The handler returns the completion (`AiSessionComplete`), sent with `template` (the
  template to make of the session, in the completion's own transaction) when given;
  raising `RetryableError`
  fails the attempt as retryable (the server requeues it with backoff while attempts are
  left), as does an API call of the handler answered 429/502/503/504 or unreachable
  through its retries; a lease error ends the session here without a write; any other
  exception fails the session for good, with the error kept. A completion the API
  refuses for another reason than the lease (no template can be made of the result)
  fails the session for good too.
* `stop` (SIGTERM/SIGINT in `run_until_signalled`) ends claiming; running handlers get
  `grace` seconds to finish, after which they are cancelled and their leases released,
  so another worker takes the session at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from templator.ai_session.schemas import AiSessionComplete, AiSessionFail, PhaseUpdate
from templator.client.aio import AsyncClient
from templator.client.errors import ApiError
from templator.models.enums import LogLevel, SessionPhase
from templator.processing_log.schemas import LogLine
from templator.template.schemas import TemplateOptions
from templator.work.schemas import Claim, ClaimRequest

log = logging.getLogger("templator.worker")
LOST = frozenset({"lease_lost", "lease_expired", "lease_invalid", "session_finished"})
TRANSIENT = frozenset({0, 429, 502, 503, 504})
"""Statuses of a handler's refused call that make the attempt retryable (0: unreachable)."""


class RetryableError(Exception):
    """Raised by a handler: this attempt failed, but another may succeed (a timeout of a
    model call, a rate limit); the session goes back to the queue after a backoff."""


@dataclass
class Job:
    """One claimed session, as a handler sees it: its data, designs and lease, and the
    writes it makes under that lease."""

    claim: Claim
    client: AsyncClient
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def session_id(self) -> str:
        """The session's id."""
        return self.claim.session.id

    @property
    def lease(self) -> str:
        """The lease token every write carries."""
        return self.claim.lease.token

    async def phase(self, phase: SessionPhase, payload: Any, progress: float) -> None:
        """Record a phase's output and the progress reached."""
        update = PhaseUpdate(phase=phase, payload=payload, progress=progress)
        await self.client.record_phase(self.session_id, update, self.lease)

    async def log(
        self, message: str, *, phase: SessionPhase, level: LogLevel = LogLevel.INFO
    ) -> None:
        """Append one processing-log line."""
        line = LogLine(level=level, phase=phase, message=message)
        await self.client.append_logs(self.session_id, [line], self.lease)

    async def design(self, index: int = 0) -> bytes:
        """The bytes of the session's `index`th design (its presigned URL)."""
        return await self.client.download(self.claim.designs[index].url)


Handler = Callable[[Job], Coroutine[Any, Any, AiSessionComplete]]
AfterComplete = Callable[[Job], Awaitable[None]]
"""Runs after the completion committed, outside it (a notification, say): a worker that
dies first never runs it. What must not be lost with the completion — the template —
goes in `template`, which the API makes in the completion's transaction."""
OnOutcome = Callable[[str, str], None]
"""Called with (session id, outcome) as each claimed session ends here: completed,
failed, retried, cancelled, released or lost."""


@dataclass
class WorkerStats:
    """What a worker did, by outcome."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0


class Worker:
    """Runs `handler` on the sessions it claims; see the module's docstring."""

    def __init__(
        self,
        client: AsyncClient,
        handler: Handler,
        *,
        name: str,
        concurrency: int = 1,
        lease_seconds: int = 60,
        wait: float = 5.0,
        grace: float = 10.0,
        template: TemplateOptions | None = None,
        after_complete: AfterComplete | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> None:
        self.client = client
        self.handler = handler
        self.name = name
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.wait = wait
        self.grace = grace
        self.template = template
        self.after_complete = after_complete
        self.on_outcome = on_outcome
        self.stats = WorkerStats()
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> WorkerStats:
        """Claim and run sessions until `stop` is set; then finish or release them."""
        while not stop.is_set():
            free = self.concurrency - len(self._running)
            if free <= 0:
                await self._wait_for_a_slot(stop)
                continue
            request = ClaimRequest(
                worker=self.name, limit=free, wait=self.wait, lease_seconds=self.lease_seconds
            )
            try:
                claimed = await self.client.claim(request)
            except ApiError as exc:
                if exc.status in (401, 403):  # a credential that cannot claim: no retry helps
                    await self._drain()
                    raise
                log.warning("claim failed: %s", exc)
                await _sleep_or_stop(stop, 1.0)
                continue
            for claim in claimed.items:
                self.stats.claimed += 1
                if stop.is_set():  # a claim that answered after the stop: give it back
                    await self._release(claim)
                    continue
                task = asyncio.create_task(self._run_job(Job(claim, self.client)))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        await self._drain()
        return self.stats

    async def _wait_for_a_slot(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({stopping, *self._running}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()

    async def _drain(self) -> None:
        """Give running sessions `grace` seconds, then cancel them (their leases are
        released by `_run_job`)."""
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=self.grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _outcome(self, session_id: str, outcome: str) -> None:
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        if self.on_outcome is not None:
            self.on_outcome(session_id, outcome)

    async def _release(self, claim: Claim) -> None:
        try:
            await self.client.release(claim.session.id, claim.lease.token)
            self._outcome(claim.session.id, "released")
        except ApiError as exc:
            log.warning("release of %s failed: %s", claim.session.id, exc)

    async def _heartbeat(self, job: Job, work: asyncio.Task[AiSessionComplete]) -> None:
        every = max(1.0, self.lease_seconds / 3)
        while not work.done():
            await asyncio.sleep(every)
            try:
                beat = await self.client.heartbeat(
                    job.session_id, job.lease, lease_seconds=self.lease_seconds
                )
            except ApiError as exc:
                if exc.code in LOST:
                    job.cancelled.set()
                    work.cancel()
                    return
                log.warning("heartbeat of %s failed: %s", job.session_id, exc)
                continue
            if beat.cancelled:
                job.cancelled.set()
                work.cancel()
                return

    async def _run_job(self, job: Job) -> None:
        work = asyncio.create_task(self.handler(job))
        beating = asyncio.create_task(self._heartbeat(job, work))
        try:
            result = await asyncio.shield(work)
        except asyncio.CancelledError:
            if job.cancelled.is_set():  # the heartbeat said stop: write nothing more
                self._outcome(job.session_id, "cancelled")
                return
            work.cancel()  # the worker is shutting down: give the session back
            with contextlib.suppress(asyncio.CancelledError):
                await work
            await self._release(job.claim)
            return
        except RetryableError as exc:
            await self._fail(job, exc, retryable=True)
        except ApiError as exc:  # one of the handler's own calls was refused
            if exc.code in LOST:  # the lease is gone: nothing more to write
                self._lost(job.session_id, exc)
            else:  # the API busy or unreachable is worth another attempt; the rest is final
                await self._fail(job, exc, retryable=exc.status in TRANSIENT)
        except Exception as exc:  # the handler's bug or a final failure: kept on the session
            await self._fail(job, exc, retryable=False)
        else:
            await self._complete(job, result)
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating

    async def _complete(self, job: Job, result: AiSessionComplete) -> None:
        try:
            await self.client.complete(job.session_id, result, job.lease, template=self.template)
        except ApiError as exc:
            if exc.code in LOST:
                self._lost(job.session_id, exc)
            else:  # refused (a result no template can be made of) or the API busy
                await self._fail(job, exc, retryable=exc.status in TRANSIENT)
            return
        if self.after_complete is not None:
            try:
                await self.after_complete(job)
            except Exception:  # the session stays COMPLETED; what followed it is logged
                log.exception("after completing %s", job.session_id)
        self._outcome(job.session_id, "completed")

    async def _fail(self, job: Job, exc: Exception, *, retryable: bool) -> None:
        error = {
            "type": type(exc).__name__,
            "message": str(exc)[:2000],
            "worker": self.name,
            "trace": traceback.format_exception(exc)[-3:],
        }
        try:
            await self.client.fail(
                job.session_id, AiSessionFail(error=error, retryable=retryable), job.lease
            )
        except ApiError as failure:
            self._lost(job.session_id, failure)
            return
        self._outcome(job.session_id, "retried" if retryable else "failed")

    def _lost(self, session_id: str, exc: ApiError) -> None:
        """A final write was refused: the lease is gone (rescued, cancelled) or the write
        failed; either way this worker is done with the session."""
        if exc.code not in LOST:
            log.error("a session's final write failed: %s", exc)
        self._outcome(session_id, "lost")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def run_until_signalled(worker: Worker) -> WorkerStats:
    """Run `worker` until SIGTERM or SIGINT, then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        return await worker.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
