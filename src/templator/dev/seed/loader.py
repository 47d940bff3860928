"""Bulk-load a realistic dataset with COPY in one transaction: all of it, or nothing.

The hot loop builds COPY text lines from pre-encoded payload pools (no per-row JSON
encoding, no ORM objects), so the PostgreSQL backend, not this process, sets the pace.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from templator.dev.seed.payloads import (
    WORDS,
    PayloadPool,
    copy_text,
    html_document,
    hubspot_config,
    template_description,
    template_name,
)
from templator.kit.ids import new_ids
from templator.models.enums import LogLevel, SessionPhase, SessionStatus, TemplateStatus, UserRole

Progress = Callable[[str, int], None]
"""progress(stage, rows_done_since_last_call)"""

CHUNK_ROWS = 2_000
PHASES = list(SessionPhase)
PHASE_COLUMNS = ["input_data", "sections", "ai_analysis", "suggestions", "final_result"]
STATUS_WEIGHTS = {
    SessionStatus.COMPLETED: 60,
    SessionStatus.PROCESSING: 10,
    SessionStatus.PENDING: 10,
    SessionStatus.FAILED: 12,
    SessionStatus.CANCELLED: 8,
}
LEVEL_WEIGHTS = {LogLevel.DEBUG: 30, LogLevel.INFO: 55, LogLevel.WARN: 10, LogLevel.ERROR: 5}
TAGS = ["hero", "landing", "pricing", "blog", "footer", "header", "form", "gallery", "cta", "faq"]
NULL = "\\N"


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """How much to make."""

    users: int = 10
    projects_per_user: int = 3
    sessions: int = 100
    templates: int = 50
    logs_per_session: int = 20
    max_versions: int = 3
    history_days: int = 90
    random_seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("users", "projects_per_user"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("sessions", "templates", "logs_per_session", "history_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_versions < 1:
            raise ValueError("max_versions must be at least 1")

    def total_rows(self) -> dict[str, int]:
        """Expected rows per stage (versions are an upper bound)."""
        return {
            "users": self.users,
            "projects": self.users * self.projects_per_user,
            "ai_sessions": self.sessions,
            "templates": self.templates,
            "template_versions": self.templates * self.max_versions,
            "processing_logs": self.sessions * self.logs_per_session,
        }


@dataclass
class SeedReport:
    """What was loaded and how long it took."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _stamp(moment: datetime) -> str:
    return moment.isoformat(sep=" ")


def _copy(
    conn: psycopg.Connection,
    table: str,
    columns: list[str],
    lines: Iterator[str],
    progress: Progress,
) -> int:
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    count = 0
    buffer: list[str] = []
    with conn.cursor().copy(statement) as copy:
        for line in lines:
            buffer.append(line)
            if len(buffer) >= CHUNK_ROWS:
                copy.write("".join(buffer))
                count += len(buffer)
                progress(table, len(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))
            count += len(buffer)
            progress(table, len(buffer))
    return count


class _Generator:
    def __init__(self, plan: SeedPlan, now: datetime) -> None:
        self.plan = plan
        self.rng = random.Random(plan.random_seed)
        self.now = now
        self.pool = PayloadPool(self.rng)
        self.user_ids = new_ids(plan.users)
        self.projects: list[tuple[str, str]] = []  # (project_id, user_id)
        self.completed: list[tuple[str, str]] = []  # (session_id, project_id)

    def _past(self, max_days: float | None = None) -> datetime:
        days = self.plan.history_days if max_days is None else max_days
        return self.now - timedelta(seconds=self.rng.uniform(0, days * 86_400))

    def users(self) -> Iterator[str]:
        roles = [UserRole.ADMIN] + [UserRole.EXPERT] * 2 + [UserRole.USER] * 7
        for i, user_id in enumerate(self.user_ids):
            role = roles[i % len(roles)]
            name = f"{self.rng.choice(WORDS).title()} {self.rng.choice(WORDS).title()}"
            stamp = _stamp(self._past())
            yield f"{user_id}\tseed-{user_id}@example.com\t{name}\t{role.value}\t{stamp}\t{stamp}\n"

    def projects_rows(self) -> Iterator[str]:
        for user_id in self.user_ids:
            for project_id in new_ids(self.plan.projects_per_user):
                self.projects.append((project_id, user_id))
                name = " ".join(self.rng.choices(WORDS, k=2)).title() + " site"
                stamp = _stamp(self._past())
                yield f"{project_id}\t{name}\tSeeded project\t{user_id}\t{stamp}\t{stamp}\n"

    def sessions(self) -> Iterator[str]:
        statuses = list(STATUS_WEIGHTS)
        weights = list(STATUS_WEIGHTS.values())
        pool = self.pool
        columns = [pool.input_data, pool.sections, pool.ai_analysis, pool.suggestions]
        for session_id in new_ids(self.plan.sessions):
            project_id, user_id = self.rng.choice(self.projects)
            status = self.rng.choices(statuses, weights)[0]
            created = self._past()
            if status is SessionStatus.COMPLETED:
                reached = len(PHASES)
            elif status is SessionStatus.PENDING:
                reached = 0
            else:
                reached = self.rng.randint(1, len(PHASES) - 1)
            payloads = [self.rng.choice(columns[i]) if i < reached else NULL for i in range(4)]
            final = self.rng.choice(pool.final_result) if reached == len(PHASES) else NULL
            phase = PHASES[max(reached - 1, 0)].value
            progress = 1.0 if status is SessionStatus.COMPLETED else round(reached / 5, 2)
            started = _stamp(created + timedelta(seconds=1)) if reached else NULL
            finished = NULL
            processing_time = NULL
            error_log = NULL
            quality = NULL
            if status in (SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED):
                took = self.rng.randint(5_000, 600_000)
                finished = _stamp(created + timedelta(milliseconds=took))
                if status is SessionStatus.COMPLETED:
                    processing_time = str(took)
                    quality = f"{self.rng.uniform(0.5, 1.0):.3f}"
                    self.completed.append((session_id, project_id))
                elif status is SessionStatus.FAILED:
                    error_log = self.rng.choice(pool.error_log)
            stamp = _stamp(created)
            yield (
                f"{session_id}\t{project_id}\t{user_id}\t{status.value}\t{phase}\t{progress}\t"
                f"{payloads[0]}\t{payloads[1]}\t{payloads[2]}\t{payloads[3]}\t{final}\t"
                f"{processing_time}\t{error_log}\t{quality}\t{started}\t{finished}\t"
                f"{stamp}\t{stamp}\n"
            )

    def logs(self, session_ids: list[str]) -> Iterator[str]:
        levels = [level.value for level in LEVEL_WEIGHTS]
        weights = list(LEVEL_WEIGHTS.values())
        per = self.plan.logs_per_session
        messages = [" ".join(self.rng.choices(WORDS, k=8)) for _ in range(256)]
        phases = [phase.value for phase in PHASES]
        data_pool = self.pool.log_data
        rng = self.rng
        for session_id in session_ids:
            base = self._past()
            ids = new_ids(per)
            chosen = rng.choices(levels, weights, k=per)
            for i in range(per):
                data = data_pool[i % len(data_pool)] if i % 3 == 0 else NULL
                stamp = _stamp(base + timedelta(seconds=i * 7))
                yield (
                    f"{ids[i]}\t{session_id}\t{chosen[i]}\t{phases[i * 5 // per]}\t"
                    f"{messages[(i * 31 + len(session_id)) % 256]}\t{data}\t{stamp}\n"
                )

    def templates(self, version_lines: list[str]) -> Iterator[str]:
        statuses = [s.value for s in TemplateStatus]
        for template_id in new_ids(self.plan.templates):
            if self.completed and self.rng.random() < 0.7:
                session_id, project_id = self.rng.choice(self.completed)
            else:
                session_id, (project_id, _) = NULL, self.rng.choice(self.projects)
            name = template_name(self.rng)
            description = template_description(self.rng)
            html = html_document(self.rng)
            css = ".tpl{display:grid}"
            config = hubspot_config(self.rng, name)
            tags = self.rng.sample(TAGS, k=self.rng.randint(1, 4))
            versions = self.rng.randint(1, self.plan.max_versions)
            version = f"1.0.{versions - 1}"
            created = self._past()
            stamp = _stamp(created)
            html_text = html.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            yield (
                f"{template_id}\t{name}\t{description}\t{project_id}\t{session_id}\t"
                f"{html_text}\t{css}\t\t{copy_text(config)}\t{version}\t"
                f"{self.rng.choice(statuses)}\t{self.rng.uniform(0.5, 1):.3f}\t"
                f"{{{','.join(tags)}}}\t{stamp}\t{stamp}\n"
            )
            content = copy_text(
                {
                    "name": name,
                    "description": description,
                    "html_content": html,
                    "css_content": css,
                    "js_content": "",
                    "hubspot_config": config,
                    "tags": tags,
                }
            )
            for n, version_id in enumerate(new_ids(versions)):
                changes = copy_text([{"field": "html_content", "note": f"revision {n}"}])
                vstamp = _stamp(created + timedelta(hours=n))
                version_lines.append(
                    f"{version_id}\t{template_id}\t1.0.{n}\t{changes}\t{content}\t{vstamp}\n"
                )


def seed_database(
    url: str, plan: SeedPlan, *, progress: Progress | None = None, analyze: bool = True
) -> SeedReport:
    """Load `plan` into the migrated database at `url` in one transaction."""
    report_progress: Progress = progress or (lambda stage, n: None)
    started = time.perf_counter()
    gen = _Generator(plan, datetime.now(UTC))
    report = SeedReport()
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn, application_name="templator-seed") as conn:
        report.rows["users"] = _copy(
            conn,
            "users",
            ["id", "email", "name", "role", "created_at", "updated_at"],
            gen.users(),
            report_progress,
        )
        report.rows["projects"] = _copy(
            conn,
            "projects",
            ["id", "name", "description", "user_id", "created_at", "updated_at"],
            gen.projects_rows(),
            report_progress,
        )
        session_columns = [
            "id",
            "project_id",
            "user_id",
            "status",
            "phase",
            "progress",
            *PHASE_COLUMNS,
            "processing_time",
            "error_log",
            "quality_score",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]
        session_ids: list[str] = []

        def tracked() -> Iterator[str]:
            for line in gen.sessions():
                session_ids.append(line[:25])
                yield line

        report.rows["ai_sessions"] = _copy(
            conn, "ai_sessions", session_columns, tracked(), report_progress
        )
        version_lines: list[str] = []
        report.rows["templates"] = _copy(
            conn,
            "templates",
            [
                "id",
                "name",
                "description",
                "project_id",
                "session_id",
                "html_content",
                "css_content",
                "js_content",
                "hubspot_config",
                "version",
                "status",
                "quality_score",
                "tags",
                "created_at",
                "updated_at",
            ],
            gen.templates(version_lines),
            report_progress,
        )
        report.rows["template_versions"] = _copy(
            conn,
            "template_versions",
            ["id", "template_id", "version", "changes", "content", "created_at"],
            iter(version_lines),
            report_progress,
        )
        report.rows["processing_logs"] = _copy(
            conn,
            "processing_logs",
            ["id", "session_id", "level", "phase", "message", "data", "timestamp"],
            gen.logs(session_ids),
            report_progress,
        )
        conn.commit()
    if analyze:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
    report.seconds = time.perf_counter() - started
    return report
