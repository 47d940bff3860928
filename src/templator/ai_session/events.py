"""The pub/sub channel of a session's progress: `AiSessionService` publishes each
committed change to it (`kit/uow.after_commit_publish`, namespaced by the cache), and the
SSE route listens to it through `api/sse.ProgressHub`."""

from __future__ import annotations


def channel(namespace: str, session_id: str) -> str:
    """The pub/sub channel of one session."""
    return f"{namespace}:session:{session_id}"


WORK_CHANNEL = "templator_work"
"""The PostgreSQL NOTIFY channel on which a session that became claimable wakes the
waiting claims (work/wakeup.py listens; one listener per API process)."""
