"""initial schema: extensions, enums, the plan's six tables, their indexes and triggers

Revision ID: cba36551015e
Revises:
Create Date: 2026-11-24 19:43:36.001055+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from templator.migrations.helpers import (
    create_extensions,
    create_updated_at_trigger,
    drop_updated_at_function,
    drop_updated_at_trigger,
)

revision: str = "cba36551015e"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPED_TABLES = ("users", "projects", "ai_sessions", "templates")


def upgrade() -> None:
    """Apply this revision."""
    create_extensions()
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column(
            "role",
            sa.Enum("USER", "ADMIN", "EXPERT", name="user_role"),
            server_default="USER",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "email = lower(email) AND position('@' in email) > 1", name=op.f("ck_users_email")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(length=25), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 200", name=op.f("ck_projects_name_length")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_projects_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_index(
        op.f("ix_projects_user_id_created_at"), "projects", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "ai_sessions",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("project_id", sa.String(length=25), nullable=False),
        sa.Column("user_id", sa.String(length=25), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED", name="session_status"
            ),
            server_default="PENDING",
            nullable=False,
        ),
        sa.Column("phase", sa.Text(), server_default="upload", nullable=False),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("input_data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("sections", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("ai_analysis", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("suggestions", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("final_result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("processing_time", sa.Integer(), nullable=True),
        sa.Column("error_log", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "phase IN ('upload', 'section_detection', 'ai_analysis', 'suggestions', 'generation')",
            name=op.f("ck_ai_sessions_phase_known"),
        ),
        sa.CheckConstraint(
            "processing_time IS NULL OR processing_time >= 0",
            name=op.f("ck_ai_sessions_processing_time_positive"),
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 1", name=op.f("ck_ai_sessions_progress_range")
        ),
        sa.CheckConstraint(
            "quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)",
            name=op.f("ck_ai_sessions_quality_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_ai_sessions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ai_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_sessions")),
    )
    op.create_index(
        "idx_ai_sessions_jsonb_gin",
        "ai_sessions",
        ["ai_analysis"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "idx_ai_sessions_status_created", "ai_sessions", ["status", "created_at"], unique=False
    )
    op.create_index(
        "idx_ai_sessions_user_project_status",
        "ai_sessions",
        ["user_id", "project_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ai_sessions_project_id_created_at"),
        "ai_sessions",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "processing_logs",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("session_id", sa.String(length=25), nullable=False),
        sa.Column(
            "level",
            sa.Enum("DEBUG", "INFO", "WARN", "ERROR", name="log_level"),
            server_default="INFO",
            nullable=False,
        ),
        sa.Column("phase", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "timestamp", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["ai_sessions.id"],
            name=op.f("fk_processing_logs_session_id_ai_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processing_logs")),
    )
    op.create_index(
        "idx_processing_logs_session_timestamp",
        "processing_logs",
        ["session_id", sa.literal_column("timestamp DESC")],
        unique=False,
    )
    op.create_index(
        "idx_processing_logs_timestamp_brin",
        "processing_logs",
        ["timestamp"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("project_id", sa.String(length=25), nullable=False),
        sa.Column("session_id", sa.String(length=25), nullable=True),
        sa.Column("html_content", sa.Text(), nullable=False),
        sa.Column("css_content", sa.Text(), nullable=True),
        sa.Column("js_content", sa.Text(), nullable=True),
        sa.Column("hubspot_config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Text(), server_default="1.0.0", nullable=False),
        sa.Column(
            "status",
            sa.Enum("DRAFT", "REVIEW", "APPROVED", "PUBLISHED", "ARCHIVED", name="template_status"),
            server_default="DRAFT",
            nullable=False,
        ),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column(
            "tags",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "version ~ '^[0-9]+\\.[0-9]+\\.[0-9]+$'", name=op.f("ck_templates_version_semver")
        ),
        sa.CheckConstraint("length(name) BETWEEN 1 AND 200", name=op.f("ck_templates_name_length")),
        sa.CheckConstraint(
            "quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)",
            name=op.f("ck_templates_quality_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_templates_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["ai_sessions.id"],
            name=op.f("fk_templates_session_id_ai_sessions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
    )
    op.create_index(
        "idx_templates_name_trgm",
        "templates",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "idx_templates_search",
        "templates",
        [
            sa.literal_column(
                "to_tsvector('english'::regconfig, (name || ' '::text) || COALESCE(description, ''::text))"
            )
        ],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "idx_templates_tags", "templates", ["tags"], unique=False, postgresql_using="gin"
    )
    op.create_index(
        op.f("ix_templates_project_id_created_at"),
        "templates",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_templates_session_id"), "templates", ["session_id"], unique=False)
    op.create_index(
        op.f("ix_templates_status_created_at"), "templates", ["status", "created_at"], unique=False
    )
    op.create_table(
        "template_versions",
        sa.Column("id", sa.String(length=25), nullable=False),
        sa.Column("template_id", sa.String(length=25), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "version ~ '^[0-9]+\\.[0-9]+\\.[0-9]+$'",
            name=op.f("ck_template_versions_version_semver"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_versions_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_versions")),
        sa.UniqueConstraint(
            "template_id", "version", name=op.f("uq_template_versions_template_id_version")
        ),
    )
    for table in TIMESTAMPED_TABLES:
        create_updated_at_trigger(table)


def downgrade() -> None:
    """Undo this revision."""
    for table in TIMESTAMPED_TABLES:
        drop_updated_at_trigger(table)
    drop_updated_at_function()
    op.drop_table("template_versions")
    op.drop_index(op.f("ix_templates_status_created_at"), table_name="templates")
    op.drop_index(op.f("ix_templates_session_id"), table_name="templates")
    op.drop_index(op.f("ix_templates_project_id_created_at"), table_name="templates")
    op.drop_index("idx_templates_tags", table_name="templates", postgresql_using="gin")
    op.drop_index("idx_templates_search", table_name="templates", postgresql_using="gin")
    op.drop_index(
        "idx_templates_name_trgm",
        table_name="templates",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_table("templates")
    op.drop_index(
        "idx_processing_logs_timestamp_brin", table_name="processing_logs", postgresql_using="brin"
    )
    op.drop_index("idx_processing_logs_session_timestamp", table_name="processing_logs")
    op.drop_table("processing_logs")
    op.drop_index(op.f("ix_ai_sessions_project_id_created_at"), table_name="ai_sessions")
    op.drop_index("idx_ai_sessions_user_project_status", table_name="ai_sessions")
    op.drop_index("idx_ai_sessions_status_created", table_name="ai_sessions")
    op.drop_index("idx_ai_sessions_jsonb_gin", table_name="ai_sessions", postgresql_using="gin")
    op.drop_table("ai_sessions")
    op.drop_index(op.f("ix_projects_user_id_created_at"), table_name="projects")
    op.drop_table("projects")
    op.drop_table("users")
    for enum_name in ("user_role", "session_status", "template_status", "log_level"):
        postgresql.ENUM(name=enum_name).drop(op.get_bind(), checkfirst=True)
