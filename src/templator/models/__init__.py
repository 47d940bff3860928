"""The ORM tables. Importing this package registers every table on `Base.metadata`."""

from templator.models.ai_session import AiSession
from templator.models.api_token import ApiToken
from templator.models.audit_log import AuditEntry
from templator.models.auth_epoch import AuthEpoch
from templator.models.base import Base
from templator.models.enums import LogLevel, SessionPhase, SessionStatus, TemplateStatus, UserRole
from templator.models.processing_log import ProcessingLog
from templator.models.project import Project
from templator.models.search_word import SearchWord
from templator.models.session_attempt import SessionAttempt, WorkTenant
from templator.models.stored_object import StoredObject
from templator.models.template import Template
from templator.models.template_version import TemplateVersion
from templator.models.user import User
from templator.models.user_search_word import UserSearchWord

__all__ = [
    "AiSession",
    "ApiToken",
    "AuditEntry",
    "AuthEpoch",
    "Base",
    "LogLevel",
    "ProcessingLog",
    "Project",
    "SearchWord",
    "SessionAttempt",
    "SessionPhase",
    "SessionStatus",
    "StoredObject",
    "Template",
    "TemplateStatus",
    "TemplateVersion",
    "User",
    "UserRole",
    "UserSearchWord",
    "WorkTenant",
]
