"""Typed rows: what building a row's schema costs, the way main built it and the way
kit/repository.RowModel does (issue #20): a template row to its cached JSON form (the
uncached read's per-row work) and a session-state row (every lifecycle step).

    .venv/bin/python -m benchmarks.bench_typed_rows

Best of 40 rounds of 5,000 calls each, alternating sides; prints µs per call and the
ratio new/old (lower is better).
"""

from __future__ import annotations

import datetime
import timeit
from collections.abc import Callable

from templator.ai_session import schemas as ss
from templator.ai_session.rows import STATE
from templator.models import SessionPhase, SessionStatus
from templator.template import schemas
from templator.template.repository import LOAD_NAMES, LoadedTemplate
from templator.template.service import template_json

NOW = datetime.datetime.now(datetime.UTC)
vals = {
    "id": "a" * 25,
    "name": "n",
    "description": None,
    "project_id": "b" * 25,
    "session_id": None,
    "html_content": "<p/>" * 100,
    "css_content": None,
    "js_content": None,
    "hubspot_config": {"a": 1, "fields": [{"x": 1}]},
    "version": "1.0.0",
    "status": "DRAFT",
    "quality_score": 0.5,
    "tags": ["a", "b"],
    "created_at": NOW,
    "updated_at": NOW,
    "owner_id": "c" * 25,
}
row = tuple(vals[c] for c in LOAD_NAMES)


def template_old() -> object:
    """main: the row as a dict, model_validate, then its JSON form."""
    d = dict(zip(LOAD_NAMES, row, strict=True))
    return schemas.Template.model_validate(d).model_dump(mode="json") | {"owner_id": d["owner_id"]}


def template_new() -> object:
    """Now: LoadedTemplate.of (RowModel) and template_json."""
    return template_json(LoadedTemplate.of(row))


srow = ("a" * 25, "PROCESSING", "ai_analysis", 0.5, NOW, "u" * 25)


def state_old() -> object:
    """main's _state(): model_construct with enum conversion."""
    session_id, status, phase, progress, updated_at = srow[:5]
    return ss.AiSessionState.model_construct(
        id=session_id,
        status=SessionStatus(status),
        phase=SessionPhase(phase),
        progress=progress,
        updated_at=updated_at,
    )


def state_new() -> object:
    """Now: RowModel (model_validate)."""
    return STATE(srow)


def main() -> None:
    """Print µs per call of each side, and new / old."""
    sides: list[Callable[[], object]] = [template_old, template_new, state_old, state_new]
    best: dict[str, float] = {}
    for _ in range(40):
        for side in sides:
            took = timeit.timeit(side, number=5000) / 5000 * 1e6
            best[side.__name__] = min(best.get(side.__name__, 1e9), took)
    for name, micros in best.items():
        print(f"{name:<14} {micros:7.2f} µs")
    for what in ("template", "state"):
        print(f"{what}: new/old {best[what + '_new'] / best[what + '_old']:.2f}x")


if __name__ == "__main__":
    main()
