"""How a session's rows become its schemas: the typed rows other domains' SQL may return
too (the work queue's claim and rescue answer whole sessions and their states).

A module of its own, not `repository.py`: another domain may import this, never the
session domain's repository (tests/test_architecture.py).
"""

from __future__ import annotations

from templator.ai_session import schemas
from templator.kit.repository import RowModel

STATE = RowModel(schemas.AiSessionState)
"""A session's state (status, phase, progress…) from a row of `STATE.columns`."""
SESSION = RowModel(schemas.AiSession)
"""A whole session from a row of `SESSION.columns`."""
