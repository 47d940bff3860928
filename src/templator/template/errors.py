"""Template errors."""

from __future__ import annotations

from templator.exceptions import Conflict, Forbidden, NotFound


class TemplateNotFound(NotFound):
    """No template with that id (or not visible to the caller)."""

    code = "template_not_found"

    def __init__(self, template_id: str) -> None:
        super().__init__(f"template {template_id!r} does not exist", field="template_id")


class TemplateVersionNotFound(NotFound):
    """No such version of a template."""

    code = "template_version_not_found"

    def __init__(self, template_id: str, version: str) -> None:
        super().__init__(f"template {template_id!r} has no version {version!r}", field="version")


class InvalidTemplateTransition(Conflict):
    """The workflow does not allow this status change."""

    code = "invalid_status_transition"


class NotAllowed(Forbidden):
    """The actor's role does not allow this."""

    code = "not_template_owner"


class ReviewerRoleRequired(NotAllowed):
    """Approving and publishing need the EXPERT or ADMIN role."""

    code = "reviewer_role_required"


class VersionConflict(Conflict):
    """Another change made the same version number first; retry the change."""

    code = "version_conflict"


class AiSessionNotCompleted(Conflict):
    """A template can only be made from a COMPLETED session."""

    code = "session_not_completed"


class TemplateArchived(Conflict):
    """Archived templates are read-only."""

    code = "template_archived"
