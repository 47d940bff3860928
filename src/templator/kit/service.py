"""The shared base of the domain services that work on the database, the cache and
(some of them) the object store: one constructor, written once.

Every such service is `XService(session, cache, store=None)` (docs/architecture.md,
"Domains and their services"): it keeps the three and builds its repository from the
session. Like polar's `kit/services.py`, the base holds only that wiring; the rules stay
in each domain's service. The store's type is a parameter (`Service[TemplateRepository,
ObjectStore]`): `kit/` is infrastructure below `storage/`, which imports `kit.ids`, so
naming `ObjectStore` here would make the two packages import each other.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from templator.cache import Cache
from templator.kit.repository import Repository

R = TypeVar("R", bound=Repository)
S = TypeVar("S")


class Service(Generic[R, S]):
    """A domain service: the caller's session, the cache, the object store when the
    process has one, and the domain's repository (`repository_type`) on the session.

    The caller commits (kit/uow.py); a service only flushes.
    """

    repository_type: type[R]
    """The domain's repository class, built on the session."""

    def __init__(self, session: AsyncSession, cache: Cache, store: S | None = None) -> None:
        self.session = session
        self.cache = cache
        self.store = store
        self.repository: R = self.repository_type(session)
