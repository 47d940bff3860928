"""Who owns a project, and whether an actor may use it: the one answer every domain asks.

Sessions and templates live in a project; before anything is read or made in one, the
caller asks `project_owner` (a ProjectNotFound for an unknown project and for another
user's alike, so existence does not leak). A single-statement write that must check it
in the same statement (a session's INSERT … SELECT, the hot path of every run) embeds
`OWNED_PROJECT`, the same rule as SQL, instead of writing its own.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.actor import Actor
from templator.project.errors import ProjectNotFound
from templator.project.repository import OWNED_PROJECT, ProjectRepository

__all__ = ["OWNED_PROJECT", "project_owner"]


async def project_owner(session: AsyncSession, actor: Actor, project_id: str) -> str:
    """The id of the user owning the project; ProjectNotFound unless `actor` may use it."""
    owner = await ProjectRepository(session).owner(project_id)
    if owner is None or not actor.may_access(owner):
        raise ProjectNotFound(project_id)
    return owner
