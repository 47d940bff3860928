"""The module check in the template workflow: the recorded score and the REVIEW gate."""

from __future__ import annotations

import pytest

from templator.ai_session.schemas import AiSessionComplete, AiSessionCreate, PhaseUpdate
from templator.ai_session.service import AiSessionService
from templator.connections import Connections
from templator.hubspot.errors import ModuleCheckFailed
from templator.kit.uow import unit_of_work
from templator.models import SessionPhase, TemplateStatus
from templator.template.schemas import TemplateFromSession
from templator.template.service import TemplateService
from tests.support.factories import Committed, hubspot_config


async def test_the_recorded_score_is_the_ai_score_times_the_check_score(
    connections: Connections, committed: Committed
) -> None:
    async with unit_of_work(connections.sessionmaker, connections.cache) as session:
        sessions = AiSessionService(session, connections.cache)
        ai = await sessions.create(
            committed.actor, AiSessionCreate(project_id=committed.project_id)
        )
        # module.subtitle is no field: one error.
        payload = {
            "html": "{{ module.title }}{{ module.subtitle }}",
            "hubspot_config": hubspot_config(),
        }
        await sessions.start(committed.actor, ai.id)
        await sessions.record_phase(
            committed.actor,
            ai.id,
            PhaseUpdate(phase=SessionPhase.GENERATION, payload=payload, progress=0.9),
        )
        await sessions.complete(committed.actor, ai.id, AiSessionComplete(quality_score=0.8))
        templates = TemplateService(session, connections.cache)
        template = await templates.create_from_session(
            committed.actor, TemplateFromSession(session_id=ai.id)
        )
        with pytest.raises(ModuleCheckFailed, match=r"module\.subtitle: there is no field"):
            await templates.set_status(committed.actor, template.id, TemplateStatus.REVIEW)
        report = await templates.check(committed.actor, template.id, record=True)
        assert report.score == 0.8
        again = await templates.check(committed.actor, template.id, record=True)
        assert again.score == 0.8
        stored = await templates.get(committed.actor, template.id)
        assert stored.quality_score == pytest.approx(0.64) and stored.version == "1.0.1"
        # Archiving a draft that fails the check is allowed.
        archived = await templates.set_status(committed.actor, template.id, TemplateStatus.ARCHIVED)
        assert archived.status is TemplateStatus.ARCHIVED
