"""The enums of the tables (roles, session status and phase, template status, log level),
stored as PostgreSQL enum types."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Enum


class UserRole(StrEnum):
    """What a user may do."""

    USER = "USER"
    ADMIN = "ADMIN"
    EXPERT = "EXPERT"


class SessionStatus(StrEnum):
    """Where an AI session is in its lifecycle."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class TemplateStatus(StrEnum):
    """Where a template is in its review workflow."""

    DRAFT = "DRAFT"
    REVIEW = "REVIEW"
    APPROVED = "APPROVED"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class LogLevel(StrEnum):
    """Severity of a processing log line."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class SessionPhase(StrEnum):
    """The phases an AI session moves through, in order (stored as text, checked)."""

    UPLOAD = "upload"
    SECTION_DETECTION = "section_detection"
    AI_ANALYSIS = "ai_analysis"
    SUGGESTIONS = "suggestions"
    GENERATION = "generation"


user_role_type = Enum(UserRole, name="user_role")
session_status_type = Enum(SessionStatus, name="session_status")
template_status_type = Enum(TemplateStatus, name="template_status")
log_level_type = Enum(LogLevel, name="log_level")
