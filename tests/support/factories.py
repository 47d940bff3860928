"""Small factories with sensible defaults for test data."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession

from templator.kit.actor import Actor
from templator.kit.ids import new_id
from templator.models import AiSession, Project, Template, User, UserRole


async def make_user(session: AsyncSession, *, role: UserRole = UserRole.USER, **kw: Any) -> User:
    """A flushed user with a unique email."""
    user = User(email=kw.pop("email", f"user-{new_id()}@example.com"), role=role, **kw)
    session.add(user)
    await session.flush()
    return user


async def make_project(session: AsyncSession, *, user: User | None = None, **kw: Any) -> Project:
    """A flushed project (and its owner when none is given)."""
    owner = user or await make_user(session)
    project = Project(name=kw.pop("name", "Landing pages"), user_id=owner.id, **kw)
    session.add(project)
    await session.flush()
    return project


async def make_session(
    session: AsyncSession, *, project: Project | None = None, **kw: Any
) -> AiSession:
    """A flushed AI session in a project."""
    proj = project or await make_project(session)
    ai_session = AiSession(project_id=proj.id, user_id=proj.user_id, **kw)
    session.add(ai_session)
    await session.flush()
    return ai_session


def hubspot_config(label: str = "Hero banner") -> dict[str, Any]:
    """A small valid HubSpot module configuration."""
    return {
        "meta": {"label": label, "content_types": ["SITE_PAGE"], "global": False},
        "fields": [{"name": "title", "label": "Title", "type": "text", "default": "Hello"}],
    }


async def make_template(
    session: AsyncSession, *, project: Project | None = None, **kw: Any
) -> Template:
    """A flushed template."""
    proj = project or await make_project(session)
    template = Template(
        name=kw.pop("name", "Hero banner"),
        project_id=proj.id,
        html_content=kw.pop("html_content", "<section class='hero'>{{ module.title }}</section>"),
        hubspot_config=kw.pop("hubspot_config", hubspot_config()),
        **kw,
    )
    session.add(template)
    await session.flush()
    return template


def actor_of(user: User) -> Actor:
    """The service-level actor for a user."""
    return Actor(user.id, user.role)


@dataclass
class Committed:
    """A user and project committed for real (deleted after the test)."""

    actor: Actor
    project_id: str


def image_bytes(fmt: str = "PNG", *, size: tuple[int, int] = (8, 8), noise: bool = False) -> bytes:
    """A real, valid image file (PNG, JPEG, GIF, WEBP); `noise` makes it incompressible."""
    pixels = os.urandom(size[0] * size[1] * 3) if noise else bytes(size[0] * size[1] * 3)
    image = Image.frombytes("RGB", size, pixels)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()
