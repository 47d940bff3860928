"""`module check`: each kind of finding, on modules written to show it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from templator.cli.module import app
from templator.hubspot.check import check_module, check_path
from templator.hubspot.package import ModuleContent

CORPUS = Path(__file__).parent / "corpus" / "reference"
runner = CliRunner()
META = {"label": "Card", "content_types": ["SITE_PAGE"]}


def write(root: Path, html: str, fields: object, meta: object = META, **extra: str) -> Path:
    folder = root / "card.module"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "fields.json").write_text(json.dumps(fields, indent=2))
    (folder / "module.html").write_text(html)
    for name, text in extra.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


def codes(folder: Path) -> list[tuple[str, str, int | None]]:
    (report,) = check_path(folder)
    return [(f.severity, f.code, f.line) for f in report.findings]


CARDS = [
    {
        "name": "cards",
        "label": "Cards",
        "type": "group",
        "occurrence": {"min": 1, "max": 6},
        "children": [
            {"name": "title", "label": "Title", "type": "text"},
            {
                "name": "style",
                "label": "Style",
                "type": "group",
                "children": [{"name": "color", "label": "Color", "type": "color"}],
            },
        ],
    }
]


def test_the_corpus_is_clean() -> None:
    reports = check_path(CORPUS)
    assert len(reports) == 5
    assert [(r.module, r.ok, r.score, r.findings) for r in reports] == [
        (r.module, True, 1.0, []) for r in reports
    ]


def test_references_are_resolved_inside_groups_and_repeater_loops(tmp_path: Path) -> None:
    html = (
        "{% for card in module.cards %}\n"
        "  {{ card.title }} {{ card.style.colour.color }}\n"
        "  {{ card.subtitle }}\n"
        "{% endfor %}\n"
        "{{ module.card }}\n"
    )
    (report,) = check_path(write(tmp_path, html, CARDS))
    errors = [(f.line, f.path, f.message) for f in report.findings if f.severity == "error"]
    assert errors == [
        (
            2,
            "cards.style.colour",
            "card.style.colour.color: there is no field 'colour' in group 'cards.style'; "
            "did you mean 'color'?",
        ),
        (
            3,
            "cards.subtitle",
            "card.subtitle: there is no field 'subtitle' in group 'cards'; did you mean 'title'?",
        ),
        (5, "card", "module.card: there is no field 'card' in fields.json; did you mean 'cards'?"),
    ]


def test_unbalanced_hubl_tags_are_errors_with_their_line(tmp_path: Path) -> None:
    html = (
        "{% if module.title %}\n"
        "  {% for x in module.items %}{{ x }}\n"
        "{% endif %}\n"
        "{% endfor %}\n"
        "{% require_css %}<style></style>\n"
        "{% raw %}{% if %}{% endraw %}\n"
    )
    fields = [
        {"name": "title", "label": "T", "type": "text"},
        {"name": "items", "label": "I", "type": "text", "occurrence": {}},
    ]
    (report,) = check_path(write(tmp_path, html, fields))
    messages = [(f.line, f.message) for f in report.findings if f.code == "unbalanced_tag"]
    assert messages == [
        (3, "{% endif %} closes {% for %} opened at line 2; close that first"),
        (4, "{% endfor %} closes nothing: no {% for %}"),
        (5, "{% require_css %} is never closed: add {% end_require_css %}"),
    ]


def test_unused_fields_duplicates_and_missing_alt_text(tmp_path: Path) -> None:
    fields = [
        {"name": "title", "label": "Title", "type": "text"},
        {"name": "hero", "label": "Hero", "type": "Image", "default": {"src": "x.png"}},
        {"name": "title", "label": "Again", "type": "text"},
        *CARDS,
    ]
    html = "{{ module.title }} <img src='{{ module.hero.src }}'>"
    found = codes(write(tmp_path, html, fields))
    assert found == [
        ("error", "duplicate_field", 16),
        ("warning", "image_alt_missing", 8),
        ("warning", "unused_field", 21),  # the cards group, once for all of it
    ]


def test_a_group_printed_whole_counts_as_used_and_loops_do_not(tmp_path: Path) -> None:
    html = "{% for card in module.cards %}{{ card.style }}{% endfor %}"
    found = codes(write(tmp_path, html, CARDS))
    assert found == [("warning", "unused_field", 12)]  # cards.title


def test_invalid_json_is_one_error_with_its_line_and_the_html_is_still_read(
    tmp_path: Path,
) -> None:
    folder = write(tmp_path, "{% if x %}", [])
    (folder / "fields.json").write_text('[\n  {"name": "a",}\n]')
    (report,) = check_path(folder)
    assert [(f.code, f.file, f.line) for f in report.findings] == [
        ("invalid_module_json", "fields.json", 2),
        ("unbalanced_tag", "module.html", 1),
    ]


def test_a_fields_js_module_is_not_checked_for_references(tmp_path: Path) -> None:
    folder = write(tmp_path, "{{ module.anything }}", [])
    (folder / "fields.json").unlink()
    (folder / "fields.js").write_text("module.exports = [];")
    (report,) = check_path(folder)
    assert report.findings == []


def test_unknown_keys_are_warnings_and_the_score_counts_findings() -> None:
    config = {
        "meta": META | {"lable": "typo"},
        "fields": [{"name": "title", "label": "T", "type": "text"}],
    }
    report = check_module(ModuleContent("Card", "{{ module.nope }}", None, None, config))
    assert [(f.severity, f.code) for f in report.findings] == [
        ("error", "unknown_field"),
        ("warning", "unused_field"),
        ("warning", "unknown_key"),
    ]
    assert report.score == round(1 - 0.2 - 2 * 0.05, 2)


def test_the_command_exits_1_with_a_list_and_json_for_machines(tmp_path: Path) -> None:
    folder = write(
        tmp_path, "{{ module.titel }}", [{"name": "title", "label": "T", "type": "text"}]
    )
    result = runner.invoke(app, ["check", str(folder)])
    assert result.exit_code == 1
    assert "error (would render wrong): module.html:1: module.titel:" in result.output
    assert "there is no field 'titel'" in result.output
    result = runner.invoke(app, ["check", str(folder), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["modules"][0]["errors"] == 1 and body["modules"][0]["ok"] is False
    assert runner.invoke(app, ["check", str(CORPUS)]).exit_code == 0


@pytest.mark.parametrize("target", ["missing.zip", "not-an-id"])
def test_the_command_refuses_a_missing_path_in_one_line(target: str) -> None:
    result = runner.invoke(app, ["check", target])
    assert result.exit_code == 1
    assert "no such file or folder" in result.output and "Traceback" not in result.output


def test_method_calls_on_a_group_are_not_fields(tmp_path: Path) -> None:
    html = (
        "{% for card in module.cards %}{% for k, v in card.style.items() %}{{ k }}{% endfor %}"
        "{{ card.title }}{% endfor %}"
    )
    assert codes(write(tmp_path, html, CARDS)) == []


def test_one_unknown_field_read_twelve_times_is_one_finding_with_twelve_lines(
    tmp_path: Path,
) -> None:
    html = "\n".join("{{ module.titel }}" for _ in range(12)) + "{{ module.title }}"
    folder = write(tmp_path, html, [{"name": "title", "label": "T", "type": "text"}])
    (report,) = check_path(folder)
    (finding,) = report.findings
    assert (finding.code, finding.lines, finding.impact) == (
        "unknown_field",
        tuple(range(1, 13)),
        "render",
    )
    assert report.score == 0.8
    assert "module.html:1,2,3" in str(finding)


def test_every_problem_of_a_refused_config_is_a_finding_named_by_field_names(
    tmp_path: Path,
) -> None:
    choices = {"type": "choice", "choices": [["a", "A"]]}
    fields = [
        {
            "name": "hero",
            "label": "H",
            "type": "group",
            "children": [
                {"name": "style", "label": "S", **choices, "default": "b"},
                {"name": "size", "label": "Z", **choices, "default": "c"},
            ],
        },
    ]
    (report,) = check_path(write(tmp_path, "{{ module.hero }}", fields))
    assert [(f.code, f.path, f.impact) for f in report.findings] == [
        ("invalid_hubspot_config", "fields > hero > style", "upload"),
        ("invalid_hubspot_config", "fields > hero > size", "upload"),
    ]


def test_severity_follows_what_hubspot_would_do(tmp_path: Path) -> None:
    fields = [
        {"name": "title", "label": "T", "type": "text"},
        {"name": "photo", "label": "P", "type": "image"},
        {"name": "embed", "label": "E", "type": "html"},
    ]
    html = "{% if module.titel %}{{ module.embed }}"
    (report,) = check_path(write(tmp_path, html, fields))
    assert sorted((f.impact, f.severity, f.code) for f in report.findings) == [
        ("render", "error", "unknown_field"),
        ("style", "warning", "image_alt_missing"),
        ("style", "warning", "unknown_type"),
        ("style", "warning", "unused_field"),
        ("style", "warning", "unused_field"),
        ("upload", "error", "unbalanced_tag"),
    ]


def test_a_bound_graphql_query_reads_fields_and_provides_data_query(tmp_path: Path) -> None:
    meta = {"label": "Events", "content_types": ["SITE_PAGE"], "data_query_path": "q/events"}
    fields = [{"name": "limit", "label": "L", "type": "number"}]
    html = "{% for e in module.data_query.data.items %}{{ e.name }}{% endfor %}"
    graphql = "# $limit: {{ module.limit }}\nquery events($limit: Int) { items { name } }\n"
    folder = write(tmp_path, html, fields, meta, events__graphql=graphql)
    assert codes(folder) == []
    (folder / "events.graphql").write_text("# $limit: {{ module.limt }}\nquery q { x }\n")
    assert codes(folder) == [("error", "unknown_field", 1), ("warning", "unused_field", 3)]
