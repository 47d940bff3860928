"""Who is acting: the authenticated user, as services see them."""

from __future__ import annotations

from dataclasses import dataclass

from templator.models.enums import UserRole


@dataclass(frozen=True, slots=True)
class Actor:
    """The user on whose behalf a service call runs."""

    id: str
    role: UserRole

    @property
    def is_admin(self) -> bool:
        """ADMIN sees and changes everything."""
        return self.role is UserRole.ADMIN

    @property
    def can_review(self) -> bool:
        """EXPERT and ADMIN approve and publish templates."""
        return self.role in (UserRole.EXPERT, UserRole.ADMIN)

    def may_access(self, owner_id: str) -> bool:
        """True when the actor owns the thing or is ADMIN."""
        return self.is_admin or self.id == owner_id
