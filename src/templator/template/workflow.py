"""The rules of a template's review workflow, in one place: the service checks moves with
them, and the search's SQL (repository.py) lists the reviewable statuses from them."""

from __future__ import annotations

from templator.models import TemplateStatus

S = TemplateStatus
WORKFLOW: dict[TemplateStatus, frozenset[TemplateStatus]] = {
    S.DRAFT: frozenset({S.REVIEW, S.ARCHIVED}),
    S.REVIEW: frozenset({S.DRAFT, S.APPROVED, S.ARCHIVED}),
    S.APPROVED: frozenset({S.PUBLISHED, S.DRAFT, S.ARCHIVED}),
    S.PUBLISHED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset({S.DRAFT}),
}
REVIEWER_MOVES = frozenset({S.APPROVED, S.PUBLISHED})
"""Moves only an EXPERT or ADMIN may make."""
REVIEWABLE = frozenset({S.REVIEW, S.APPROVED, S.PUBLISHED})
"""Statuses in which a reviewer (EXPERT) may read another user's template."""


def reviewable_sql(column: str) -> str:
    """`column IN (<the reviewable statuses>)`, in a stable order (values are our enum's)."""
    values = ", ".join(f"'{s.value}'" for s in TemplateStatus if s in REVIEWABLE)
    return f"{column} IN ({values})"
