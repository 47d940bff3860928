"""The pub/sub channel of a session's progress: `AiSessionService` publishes each
committed change to it (`kit/uow.after_commit_publish`, namespaced by the cache), and the
SSE route listens to it through `api/sse.ProgressHub`. Its name is written here only."""

from __future__ import annotations


def progress_channel(session_id: str) -> str:
    """The channel of one session's progress, before the cache's namespace."""
    return f"session:{session_id}"


def channel(namespace: str, session_id: str) -> str:
    """The namespaced pub/sub channel of one session (what `Cache.channel` makes of
    `progress_channel`)."""
    return f"{namespace}:{progress_channel(session_id)}"


WORK_CHANNEL = "templator_work"
"""The PostgreSQL NOTIFY channel on which a session that became claimable wakes the
waiting claims (work/wakeup.py listens; one listener per API process)."""
