"""The wild corpus (tests/hubspot/corpus/wild/): modules written the way HubSpot's tools
write them (`hs fetch`'s `"key" : value`, Design Manager keys, 0-byte files, nested
folders), each with the findings `module check` must report, no more and no fewer.

Every module here reproduces a pattern HubSpot accepts that an earlier version refused or
misread (issue #22); `promo.module` holds the true positives the checker must keep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from templator.hubspot.check import check_path
from templator.hubspot.package import build_modules_zip, read_all, read_modules, write_modules
from tests.hubspot.test_lossless import source_files

WILD = Path(__file__).parent / "corpus" / "wild"
FOLDERS = sorted(p for p in WILD.rglob("*.module") if p.is_dir())
NAMES = [p.relative_to(WILD).as_posix() for p in FOLDERS]


def expected(folder: Path) -> list[list[Any]]:
    """The findings written beside the module: [severity, code, file, lines, path]."""
    data: list[list[Any]] = json.loads(folder.with_name(folder.name + ".expected.json").read_text())
    return data


def test_every_module_of_the_corpus_imports() -> None:
    result = read_all(WILD)
    assert result.refused == []
    assert sorted(m.folder for m in result.modules) == NAMES


@pytest.mark.parametrize("folder", FOLDERS, ids=NAMES)
def test_a_module_round_trips_byte_for_byte(folder: Path, tmp_path: Path) -> None:
    (module,) = read_modules(folder)
    written = write_modules([module], tmp_path)
    assert source_files(written[0]) == source_files(folder)


def test_nested_design_manager_folders_are_kept_and_written_back(tmp_path: Path) -> None:
    modules = read_modules(WILD)
    write_modules(modules, tmp_path / "out")
    for name, folder in zip(NAMES, FOLDERS, strict=True):
        assert source_files(tmp_path / "out" / name) == source_files(folder)
    assert (tmp_path / "out" / "design-manager" / "links" / "button.module").is_dir()
    names = set(
        __import__("zipfile")
        .ZipFile(__import__("io").BytesIO(build_modules_zip(modules)))
        .namelist()
    )
    assert "design-manager/buttons/button.module/meta.json" in names
    assert "design-manager/links/button.module/meta.json" in names


@pytest.mark.parametrize("folder", FOLDERS, ids=NAMES)
def test_module_check_reports_exactly_the_expected_findings(folder: Path) -> None:
    (report,) = [r for r in check_path(WILD) if r.module == folder.relative_to(WILD).as_posix()]
    found = [[f.severity, f.code, f.file, list(f.lines), f.path] for f in report.findings]
    assert sorted(found, key=str) == sorted(expected(folder), key=str)


def test_the_corpus_covers_every_field_type_of_the_reference() -> None:
    from templator.hubspot.schemas import FIELD_TYPES

    def types(fields: list[Any]) -> set[str]:
        out: set[str] = set()
        for field in fields:
            out.add(str(field["type"]).lower())
            out |= types(field.get("children", []))
        return out

    seen: set[str] = set()
    for module in read_modules(WILD):
        seen |= types(module.config["fields"])
    assert set(FIELD_TYPES) <= seen
    assert {"html", "hubl", "audioplayer", "podcast", "salesforcecampaign"} <= seen
