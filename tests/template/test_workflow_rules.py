"""The reviewable statuses are written once (template/workflow.py): change them there and
both the read check (`may_read`) and the search's SQL follow."""

from __future__ import annotations

import pytest

from templator.kit.actor import Actor
from templator.models import TemplateStatus, UserRole
from templator.template import workflow
from templator.template.repository import search_statement
from templator.template.schemas import TemplateQuery
from templator.template.service import may_read

EXPERT = Actor("e" * 25, UserRole.EXPERT)


def _expert_search_sql() -> str:
    sql, _ = search_statement(EXPERT, TemplateQuery(), offset=0)
    return sql


def test_the_search_and_the_read_check_state_todays_reviewable_statuses() -> None:
    assert "t.status IN ('REVIEW', 'APPROVED', 'PUBLISHED')" in _expert_search_sql()
    assert may_read(EXPERT, {"owner_id": "o" * 25, "status": "REVIEW"})
    assert not may_read(EXPERT, {"owner_id": "o" * 25, "status": "DRAFT"})


def test_a_changed_reviewable_set_changes_the_search_sql_and_the_read_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workflow, "REVIEWABLE", frozenset({TemplateStatus.PUBLISHED}))

    assert "t.status IN ('PUBLISHED')" in _expert_search_sql()
    assert not may_read(EXPERT, {"owner_id": "o" * 25, "status": "REVIEW"})
    assert may_read(EXPERT, {"owner_id": "o" * 25, "status": "PUBLISHED"})
