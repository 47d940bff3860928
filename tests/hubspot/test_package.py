"""HubSpot module export/import: valid format, exact error paths, deterministic zips."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from templator.hubspot.config import validate_hubspot_config
from templator.hubspot.errors import InvalidHubSpotConfig, InvalidModuleArchive, ModuleTooLarge
from templator.hubspot.package import (
    ModuleContent,
    build_module_zip,
    read_module,
    slugify,
    write_module_folder,
)


def full_config() -> dict[str, Any]:
    """A config using every precisely modelled field type, groups and a repeater."""
    return {
        "meta": {
            "label": "Pricing table",
            "content_types": ["SITE_PAGE", "LANDING_PAGE"],
            "global": False,
            "is_available_for_new_content": True,
            "css_assets": [],
            "js_assets": [],
            "icon": "https://example.com/icon.svg",
        },
        "fields": [
            {
                "name": "title",
                "label": "Title",
                "type": "text",
                "default": "Plans",
                "required": True,
            },
            {"name": "intro", "label": "Intro", "type": "richtext", "default": "<p>Hi</p>"},
            {
                "name": "hero",
                "label": "Hero",
                "type": "image",
                "responsive": True,
                "default": {"src": "", "alt": "hero", "loading": "lazy"},
            },
            {
                "name": "more",
                "label": "More",
                "type": "url",
                "default": {"href": "https://x.io", "type": "EXTERNAL"},
            },
            {
                "name": "cta_link",
                "label": "Link",
                "type": "link",
                "default": {"open_in_new_tab": True},
            },
            {
                "name": "dark",
                "label": "Dark",
                "type": "boolean",
                "default": False,
                "display": "toggle",
            },
            {
                "name": "columns",
                "label": "Columns",
                "type": "number",
                "min": 1,
                "max": 4,
                "step": 1,
                "default": 3,
            },
            {
                "name": "layout",
                "label": "Layout",
                "type": "choice",
                "choices": [["grid", "Grid"], ["list", "List"]],
                "default": "grid",
            },
            {
                "name": "accent",
                "label": "Accent",
                "type": "color",
                "default": {"color": "#ff6600", "opacity": 100},
            },
            {"name": "font", "label": "Font", "type": "font", "default": {"font": "Merriweather"}},
            {"name": "buy", "label": "Buy", "type": "cta"},
            {"name": "launch", "label": "Launch", "type": "date"},
            {
                "name": "plans",
                "label": "Plans",
                "type": "group",
                "occurrence": {
                    "min": 1,
                    "max": 6,
                    "default": 3,
                    "sorting_label_field": "plans.name",
                },
                "children": [
                    {"name": "name", "label": "Name", "type": "text"},
                    {"name": "price", "label": "Price", "type": "number", "prefix": "$"},
                    {
                        "name": "extras",
                        "label": "Extras",
                        "type": "group",
                        "children": [{"name": "note", "label": "Note", "type": "text"}],
                    },
                ],
            },
        ],
    }


def module(config: dict[str, Any] | None = None, name: str = "Pricing table") -> ModuleContent:
    config = config or full_config()
    validate_hubspot_config(config)
    return ModuleContent(
        name=name,
        html="<div>{{ module.title }}</div>",
        css=".x{color:red}",
        js="console.log(1);",
        config=config,
    )


def test_a_complete_config_validates_and_exports_five_files() -> None:
    data = build_module_zip(module())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert names == sorted(
            f"pricing-table.module/{n}"
            for n in ("fields.json", "meta.json", "module.css", "module.html", "module.js")
        )
        meta = json.loads(archive.read("pricing-table.module/meta.json"))
        fields = json.loads(archive.read("pricing-table.module/fields.json"))
    assert meta["label"] == "Pricing table" and meta["global"] is False
    assert [f["type"] for f in fields][-1] == "group"
    assert fields[-1]["occurrence"] == {
        "min": 1,
        "max": 6,
        "sorting_label_field": "plans.name",
        "default": 3,
    }


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (
            lambda c: c["fields"][12]["occurrence"].update(min=5, max=2),
            "fields > plans > occurrence",
            "min (5) is greater than max (2)",
        ),
        (
            lambda c: c["fields"][7].__setitem__("default", "table"),
            "fields > layout",
            "default 'table' is not one of the choices",
        ),
        (
            lambda c: c["meta"].__setitem__("content_types", ["SITE_PAGES"]),
            "meta > content_types",
            "content type 'SITE_PAGES' does not exist; did you mean 'SITE_PAGE'?",
        ),
        (
            lambda c: c["fields"][11].__setitem__("type", "hubdbrow"),
            "fields > launch > table_name_or_id",
            "Field required",
        ),
        (
            lambda c: c["fields"].append({"name": "title", "label": "Again", "type": "text"}),
            "fields",
            "two sibling fields are named 'title'",
        ),
        (
            lambda c: c["fields"][0].__setitem__("name", "bad name"),
            "fields > bad name > name",
            "must be 1-100 letters, digits or _",
        ),
        (
            lambda c: c["fields"][8]["default"].__setitem__("color", "red"),
            "fields > accent",
            "hex color",
        ),
        (lambda c: c["meta"].pop("content_types"), "meta", "set content_types"),
    ],
)
def test_invalid_configs_are_refused_with_the_path_of_the_bad_field(
    mutate: Any, path: str, message: str
) -> None:
    config = copy.deepcopy(full_config())
    mutate(config)
    with pytest.raises(InvalidHubSpotConfig) as caught:
        validate_hubspot_config(config)
    assert caught.value.field == path
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        (
            lambda c: c["fields"][5].__setitem__("type", "colour"),
            "fields > dark > type",
            "field type 'colour' is not one this checker knows; kept as written, its "
            "properties not checked; did you mean 'color'?",
        ),
        (
            lambda c: c["fields"][12]["children"][2]["children"][0].__setitem__("type", "html"),
            "fields > plans > extras > note > type",
            "field type 'html' is not one this checker knows; kept as written, its "
            "properties not checked",
        ),
    ],
)
def test_an_unknown_field_type_is_kept_and_warned_of(mutate: Any, path: str, message: str) -> None:
    config = copy.deepcopy(full_config())
    mutate(config)
    assert [(w.path, w.message) for w in validate_hubspot_config(config)] == [(path, message)]


def test_every_problem_of_a_config_is_reported_by_field_names() -> None:
    config = copy.deepcopy(full_config())
    config["fields"][7]["default"] = "table"
    config["fields"][12]["children"][2]["children"].append(
        {"name": "size", "label": "S", "type": "choice", "choices": [["s", "S"]], "default": "xl"}
    )
    with pytest.raises(InvalidHubSpotConfig) as caught:
        validate_hubspot_config(config)
    assert caught.value.problems == (
        ("fields > layout", "default 'table' is not one of the choices"),
        ("fields > plans > extras > size", "default 'xl' is not one of the choices"),
    )


def test_what_hubspot_stores_is_accepted() -> None:
    config = copy.deepcopy(full_config())
    config["meta"].pop("label")
    config["meta"]["host_template_types"] = ["ANY"]
    config["fields"][7]["default"] = ""
    for key, value in (("portal_id", 1), ("embed_versions", [1]), ("sortable", True)):
        config["fields"][0][key] = value
    config["meta"]["cloned_from_module_id"] = 5
    assert validate_hubspot_config(config) == []
    config["meta"]["label"] = None
    assert validate_hubspot_config(config) == []


def test_the_same_template_gives_byte_identical_zips_whatever_the_key_order() -> None:
    config = full_config()
    reordered = json.loads(json.dumps(config))
    reordered["meta"] = dict(reversed(list(reordered["meta"].items())))
    reordered["fields"] = [dict(reversed(list(f.items()))) for f in reordered["fields"]]
    assert build_module_zip(module(config)) == build_module_zip(module(reordered))


def test_export_import_export_is_identical(tmp_path: Path) -> None:
    first = build_module_zip(module())
    again = build_module_zip(read_module(first))
    assert again == first
    folder = write_module_folder(read_module(first), tmp_path)
    assert folder.name == "pricing-table.module"
    assert build_module_zip(read_module(folder)) == first


names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40
)
# What a text column can hold: any UTF-8 but NUL.
texts = st.characters(codec="utf-8", exclude_characters="\x00")
field_names = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    label=names,
    html=st.text(texts, min_size=1, max_size=200),
    css=st.one_of(st.none(), st.text(texts, max_size=50)),
    field_list=st.lists(field_names, unique=True, max_size=5),
)
def test_round_trip_holds_for_generated_modules(
    label: str, html: str, css: str | None, field_list: list[str]
) -> None:
    config = {
        "meta": {"label": label, "content_types": ["ANY"]},
        "fields": [{"name": n, "label": n, "type": "text", "default": label} for n in field_list],
    }
    validate_hubspot_config(config)
    first = build_module_zip(ModuleContent(name=label, html=html, css=css, js=None, config=config))
    assert build_module_zip(read_module(first)) == first


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("entries", "error", "message"),
    [
        ({"../evil.module/meta.json": b"{}"}, InvalidModuleArchive, "unsafe path"),
        ({"/abs.module/meta.json": b"{}"}, InvalidModuleArchive, "unsafe path"),
        ({"C:/abs.module/meta.json": b"{}"}, InvalidModuleArchive, "unsafe path"),
        (
            {f"m.module/f{i}.txt": b"x" for i in range(250)},
            ModuleTooLarge,
            "more than 200 files besides",
        ),
        (
            {"m.module/module.html": b"0" * (2 * 1024 * 1024)},
            ModuleTooLarge,
            "m.module/module.html: is over the limit of 1,048,576 bytes",
        ),
        (
            {"a.module/meta.json": b"{}", "b.module/meta.json": b"{}"},
            InvalidModuleArchive,
            "no module.html",
        ),
        ({"m.module/meta.json": b"{not json"}, InvalidModuleArchive, "no module.html"),
    ],
)
def test_unsafe_or_broken_archives_are_refused(
    entries: dict[str, bytes], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        read_module(_zip(entries))


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(InvalidModuleArchive, match="not a zip"):
        read_module(b"hello")


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Hero Banner!", "hero-banner"), ("Ünïcode", "unicode"), ("../../x", "x"), ("***", "module")],
)
def test_slugs_are_safe(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    ("folder", "kept"),
    [
        ("design-manager/buttons/button.module", True),
        ("button.module", True),
        ("../button.module", False),
        ("/abs/button.module", False),
        ("a/.hidden/button.module", False),
        ("outer.module/inner.module", False),
        ("buttons/button", False),
    ],
)
def test_a_kept_folder_is_a_relative_path_ending_in_a_module_folder(
    folder: str, kept: bool
) -> None:
    config = {**full_config(), "source": {"folder": folder}}
    if kept:
        assert validate_hubspot_config(config) == []
    else:
        with pytest.raises(InvalidHubSpotConfig, match=r"source\.folder"):
            validate_hubspot_config(config)
