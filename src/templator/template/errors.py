"""Template errors."""

from __future__ import annotations

from templator.exceptions import Conflict, Forbidden, NotFound


class TemplateNotFound(NotFound):
    """No template with that id (or not visible to the caller)."""

    def __init__(self, template_id: str) -> None:
        super().__init__(f"template {template_id!r} does not exist", field="template_id")


class TemplateVersionNotFound(NotFound):
    """No such version of a template."""

    def __init__(self, template_id: str, version: str) -> None:
        super().__init__(f"template {template_id!r} has no version {version!r}", field="version")


class InvalidTemplateTransition(Conflict):
    """The workflow does not allow this status change."""


class NotAllowed(Forbidden):
    """The actor's role does not allow this."""


class SessionNotCompleted(Conflict):
    """A template can only be made from a COMPLETED session."""


class TemplateArchived(Conflict):
    """Archived templates are read-only."""
