"""Work-queue errors (the lease errors are the session's: ai_session/errors.py)."""

from __future__ import annotations

from templator.exceptions import Forbidden


class WorkerScopeRequired(Forbidden):
    """Only a worker credential (a token with scope `worker`) claims sessions."""

    code = "worker_scope_required"

    def __init__(self) -> None:
        super().__init__(
            "claiming and holding sessions needs a worker token: an ADMIN creates one with "
            '`templator token create --user ADMIN_EMAIL --scope worker` or POST /tokens {"scopes": '
            '["worker"]}'
        )
