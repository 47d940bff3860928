"""The lifecycle is written once (ai_session/lifecycle.py): change a rule there and both
the service's check and the repository's SQL follow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from templator.ai_session import lifecycle
from templator.ai_session.errors import InvalidAiSessionTransition
from templator.ai_session.schemas import AiSessionCreate
from templator.ai_session.service import AiSessionService
from templator.connections import Connections
from templator.models import SessionStatus
from tests.support.factories import actor_of, make_project, make_user

_CHANGED_RULES = textwrap.dedent(
    """
    import json
    from templator.ai_session import lifecycle
    from templator.models import SessionPhase, SessionStatus as S

    # The rule, changed in one place before the repository builds its SQL: a session
    # may complete straight from PENDING, and the last two phases swap places.
    lifecycle.ALLOWED[S.PENDING] = lifecycle.ALLOWED[S.PENDING] | {S.COMPLETED}
    order = lifecycle.PHASE_ORDER
    order[-1], order[-2] = order[-2], order[-1]

    from templator.ai_session import repository

    print(json.dumps({
        "complete": repository._COMPLETE,
        "record": repository._RECORD_PHASE["sections"],
        "can_move": lifecycle.can_move(S.PENDING, S.COMPLETED),
    }))
    """
)


def test_a_changed_rule_changes_the_generated_sql_and_the_python_check() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHANGED_RULES], capture_output=True, text=True, check=True
    ).stdout
    seen = json.loads(out)
    assert seen["can_move"] is True
    assert "status IN ('PENDING', 'PROCESSING')" in seen["complete"]
    assert "'suggestions'" in seen["complete"]  # the last phase is now suggestions
    assert "'generation', 'suggestions']" in seen["record"]


def test_the_generated_sql_states_todays_rules() -> None:
    from templator.ai_session import repository

    assert "status IN ('PROCESSING')" in repository._COMPLETE
    assert "status IN ('PENDING')" in repository._START
    assert "status IN ('PROCESSING')" in repository._RECORD_PHASE["sections"]


async def test_a_move_the_table_stops_allowing_is_refused_by_the_database_and_the_service(
    db_session: AsyncSession, connections: Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await make_user(db_session)
    project = await make_project(db_session, user=user)
    service = AiSessionService(db_session, connections.cache)
    actor = actor_of(user)
    created = await service.create(actor, AiSessionCreate(project_id=project.id))
    rules = dict(lifecycle.ALLOWED)
    rules[SessionStatus.PENDING] = frozenset({SessionStatus.PROCESSING})
    monkeypatch.setattr(lifecycle, "ALLOWED", rules)

    with pytest.raises(InvalidAiSessionTransition, match="cannot move to CANCELLED"):
        await service.cancel(actor, created.id)
    state = await service.get_state(actor, created.id)
    assert state.status is SessionStatus.PENDING
