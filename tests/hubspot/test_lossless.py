"""Real-world modules in and out without losing a byte: the corpus, through PostgreSQL.

The corpus (tests/hubspot/corpus/) holds modules written the way HubSpot's theme
boilerplate and `hs fetch` write them: Design Manager keys in meta.json, every field
type of the reference, repeaters with list defaults, groups nested in repeaters, a
folder name with a space, `_locales/`, a binary image, CRLF line endings, a module.js
without a final newline, modules with and without css/js, 4-space indentation and
non-ASCII text.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from templator.connections import Connections
from templator.hubspot.package import (
    ModuleContent,
    build_module_zip,
    build_modules_zip,
    module_files,
    read_module,
    read_modules,
)
from templator.template.cache import template_key
from templator.template.schemas import TemplateCreate, TemplateUpdate
from templator.template.service import TemplateService, module_of
from tests.support.factories import actor_of, make_project, make_user

CORPUS = Path(__file__).parent / "corpus" / "reference"
MODULES = sorted(p for p in CORPUS.iterdir() if p.is_dir())


def source_files(folder: Path) -> dict[str, bytes]:
    """Every file of a module folder by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def ordered(value: Any) -> Any:
    """JSON with object key order made visible (a list of pairs), for order-aware equality."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def walk_fields(fields: list[Any], prefix: str = "") -> dict[str, Any]:
    """Every field (at any depth) by its dotted name."""
    out: dict[str, Any] = {}
    for field in fields:
        path = f"{prefix}{field['name']}"
        out[path] = field
        out |= walk_fields(field.get("children", []), f"{path}.")
    return out


def assert_lossless(original: dict[str, bytes], exported: dict[str, bytes]) -> None:
    """Same files; JSON equal field by field with key order and number types; bytes equal."""
    assert sorted(exported) == sorted(original), "files added or lost"
    for name in ("meta.json", "fields.json"):
        if name not in original:
            continue
        before = json.loads(original[name].decode().removeprefix("\ufeff"))
        after = json.loads(exported[name].decode().removeprefix("\ufeff"))
        if name == "fields.json":
            fields_before, fields_after = walk_fields(before), walk_fields(after)
            assert list(fields_after) == list(fields_before)
            for path, field in fields_before.items():
                assert ordered(fields_after[path]) == ordered(field), f"field {path} changed"
        assert ordered(after) == ordered(before), f"{name} changed"
    for name, data in original.items():
        assert exported[name] == data, f"{name} is not byte-equal"


def test_the_corpus_covers_what_it_claims() -> None:
    modules = read_modules(CORPUS)
    types = {
        str(f["type"]).lower() for m in modules for f in walk_fields(m.config["fields"]).values()
    }
    reference = {
        "alignment", "backgroundimage", "blog", "boolean", "border", "choice", "color", "cta",
        "crmobject", "crmobjectproperty", "date", "datetime", "email", "embed", "file",
        "followupemail", "font", "form", "gradient", "group", "hubdbrow", "hubdbtable", "icon",
        "image", "link", "logo", "menu", "number", "page", "richtext", "simplemenu", "spacing",
        "tag", "text", "textalignment", "url", "videoplayer",
    }  # fmt: skip
    assert reference <= types
    assert any(m.css is None for m in modules) and any(m.js is None for m in modules)
    assert any(m.css is not None and m.js is not None for m in modules)
    assert any("_locales/de/messages.json" in m.config.get("files", {}) for m in modules)


@pytest.mark.parametrize("folder", MODULES, ids=[p.name for p in MODULES])
def test_a_module_folder_round_trips_byte_for_byte(folder: Path) -> None:
    module = read_module(folder)
    assert module.warnings == ()
    assert_lossless(source_files(folder), module_files(module))


@pytest.mark.parametrize("folder", MODULES, ids=[p.name for p in MODULES])
async def test_a_module_round_trips_through_the_database(
    folder: Path, db_session: AsyncSession, connections: Connections
) -> None:
    """Import → JSONB (which reorders keys) → export is still lossless."""
    user = await make_user(db_session)
    project = await make_project(db_session, user=user)
    service = TemplateService(db_session, connections.cache)
    module = read_module(folder)
    created = await service.create(
        actor_of(user),
        TemplateCreate(
            project_id=project.id,
            name=module.name,
            html_content=module.html,
            css_content=module.css,
            js_content=module.js,
            hubspot_config=module.config,
        ),
    )
    await connections.cache.invalidate(template_key(connections.cache, created.id))
    stored = await service.get(actor_of(user), created.id)
    exported = module_files(module_of(stored))
    assert_lossless(source_files(folder), exported)
    with zipfile.ZipFile(io.BytesIO(build_module_zip(module_of(stored)))) as zf:
        assert {n.split("/", 1)[0] for n in zf.namelist()} == {folder.name}


def test_the_defects_of_issue_15_are_gone() -> None:
    """Design Manager keys accepted, list defaults accepted, nothing added, ints stay ints,
    no empty module.css/module.js."""
    module = read_module(CORPUS / "pricing-card.module")
    assert "external_js" in module.config["meta"]
    fields = json.loads(module_files(module)["fields.json"])
    assert fields[3]["default"] == ["5 seats", "10 GB of files", "Chat support"]
    assert all("locked" not in f and "required" not in f for f in fields[2:6])
    social = module_files(read_module(CORPUS / "social-follow.module"))
    size = json.loads(social["fields.json"])[1]["children"][0]
    assert size["max"] == 50 and isinstance(size["max"], int) and isinstance(size["step"], int)
    assert "module.js" not in module_files(module) and "module.css" not in social


def test_exports_are_deterministic() -> None:
    first = build_modules_zip(read_modules(CORPUS))
    assert build_modules_zip(read_modules(CORPUS)) == first
    assert build_modules_zip(read_modules(first)) == first


async def test_an_api_edit_changes_only_what_was_edited(
    db_session: AsyncSession, connections: Connections
) -> None:
    folder = CORPUS / "Event banner.module"
    user = await make_user(db_session)
    project = await make_project(db_session, user=user)
    service = TemplateService(db_session, connections.cache)
    module = read_module(folder)
    created = await service.create(
        actor_of(user),
        TemplateCreate(
            project_id=project.id,
            name=module.name,
            html_content=module.html,
            css_content=module.css,
            js_content=module.js,
            hubspot_config=module.config,
        ),
    )
    # What a client sends: the config it read, one label changed, without source/files.
    config = {"meta": created.hubspot_config["meta"], "fields": created.hubspot_config["fields"]}
    config["fields"][2]["label"] = "First day"
    updated = await service.update(
        actor_of(user), created.id, TemplateUpdate(hubspot_config=config)
    )
    exported = module_files(module_of(updated))
    original = source_files(folder)
    assert sorted(exported) == sorted(original)
    for name in original:
        if name != "fields.json":
            assert exported[name] == original[name], name
    before = json.loads(original["fields.json"])
    after = json.loads(exported["fields.json"])
    assert after[2].pop("label") == "First day"
    before[2].pop("label")
    assert ordered(after) == ordered(before)
    # The text changed on that one line, in the file's own style (`"key" : value`).
    changed = [
        (a, b)
        for a, b in zip(
            original["fields.json"].decode().splitlines(),
            exported["fields.json"].decode().splitlines(),
            strict=True,
        )
        if a != b
    ]
    assert changed == [('  "label" : "Starts on",', '  "label" : "First day",')]
    # Key order kept: the label moved nowhere.
    assert list(json.loads(exported["fields.json"])[2]) == list(
        json.loads(original["fields.json"])[2]
    )


def test_a_config_made_without_import_adds_nothing() -> None:
    config = {
        "meta": {"label": "Hero", "content_types": ["SITE_PAGE"]},
        "fields": [{"name": "title", "label": "Title", "type": "number", "max": 100, "step": 1}],
    }
    files = module_files(ModuleContent("Hero", "<h1>{{ module.title }}</h1>", None, None, config))
    assert sorted(files) == ["fields.json", "meta.json", "module.html"]
    assert json.loads(files["fields.json"]) == config["fields"]
    assert b"100.0" not in files["fields.json"] and b"locked" not in files["fields.json"]


@pytest.mark.parametrize(
    ("folder", "edit", "diff_lines"),
    [
        ("faq.module", lambda c: c["fields"][2].__setitem__("max", 4), 2),
        ("faq.module", lambda c: c["fields"][0].__setitem__("help_text", "Kurz"), 3),
        ("pricing-card.module", lambda c: c["meta"].__setitem__("global", True), 2),
        ("Event banner.module", lambda c: c["fields"].pop(5), 13),
        ("Event banner.module", lambda c: c["fields"].pop(0), 11),
        ("social-follow.module", lambda c: c["fields"][0]["default"].pop(1), 15),
    ],
)
def test_an_edit_rewrites_only_its_own_lines(folder: str, edit: Any, diff_lines: int) -> None:
    """Removed, added and changed lines: only those of the edit, in the file's style."""
    import copy
    import difflib

    module = read_module(CORPUS / folder)
    config = copy.deepcopy(module.config)
    edit(config)
    edited = ModuleContent(module.name, module.html, module.css, module.js, config)
    before, after = source_files(CORPUS / folder), module_files(edited)
    diff = [
        line
        for name in ("meta.json", "fields.json")
        for line in difflib.unified_diff(
            before[name].decode().splitlines(), after[name].decode().splitlines(), n=0
        )
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert len(diff) == diff_lines, diff
    assert json.loads(after["meta.json"]) == config["meta"]
    assert json.loads(after["fields.json"]) == config["fields"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path of a JSON document (containers and leaves)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


CORPUS_MODULES = {p.name: read_module(p) for p in MODULES}
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False,
    allow_infinity=False), st.text(max_size=20),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_edit_exports_exactly_the_edited_json(data: st.DataObject) -> None:
    """Change, add or delete anything anywhere: the export parses to the edited config."""
    import copy

    module = CORPUS_MODULES[data.draw(st.sampled_from(sorted(CORPUS_MODULES)))]
    config = copy.deepcopy(module.config)
    key = data.draw(st.sampled_from(["meta", "fields"]))
    path = data.draw(st.sampled_from(_paths(config[key])[1:]))
    parent = config[key]
    for part in path[:-1]:
        parent = parent[part]
    action = data.draw(st.sampled_from(["set", "delete", "add"]))
    if action == "set":
        parent[path[-1]] = data.draw(scalars)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=8))] = data.draw(scalars)
    else:
        parent.insert(path[-1], data.draw(scalars))
    files = module_files(ModuleContent(module.name, module.html, module.css, module.js, config))
    assert ordered(json.loads(files["meta.json"])) == ordered(config["meta"])
    assert ordered(json.loads(files["fields.json"])) == ordered(config["fields"])
