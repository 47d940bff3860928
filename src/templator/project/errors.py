"""Project errors."""

from __future__ import annotations

from templator.exceptions import NotFound


class ProjectNotFound(NotFound):
    """No project with that id (or not visible to the caller)."""

    code = "project_not_found"

    def __init__(self, project_id: str) -> None:
        super().__init__(f"project {project_id!r} does not exist", field="project_id")
