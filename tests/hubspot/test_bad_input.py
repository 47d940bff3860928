"""Hostile or broken input is refused with a clear error before anything is stored, in
flat memory. The big inputs are generated here (sparse files, streamed zips), never
committed."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from templator.hubspot.errors import (
    InvalidHubSpotConfig,
    InvalidModuleArchive,
    InvalidModuleJson,
    ModuleTooLarge,
)
from templator.hubspot.package import read_module, read_modules

META = b'{"label": "Hero", "content_types": ["SITE_PAGE"]}'
FIELDS = b'[{"name": "title", "label": "Title", "type": "text"}]'
HTML = b"<h1>{{ module.title }}</h1>"


def module_dir(root: Path, name: str = "hero.module", **files: bytes) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    content = {"meta.json": META, "fields.json": FIELDS, "module.html": HTML} | {
        k.replace("__", "."): v for k, v in files.items()
    }
    for rel, data in content.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def peak_of(action: Callable[[], object]) -> int:
    """Peak traced allocation (bytes) while `action` runs; it must raise."""
    tracemalloc.start()
    try:
        with pytest.raises((ModuleTooLarge, InvalidModuleArchive)):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_100_mb_fields_json_is_refused_without_reading_it(tmp_path: Path) -> None:
    folder = module_dir(tmp_path)
    with (folder / "fields.json").open("r+b") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: no disk, no memory
    with pytest.raises(ModuleTooLarge, match=r"hero\.module/fields\.json: is over the limit"):
        read_module(folder)
    assert peak_of(lambda: read_module(folder)) < 8 * 1024 * 1024


def test_a_zipped_100_mb_fields_json_is_refused_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hero.module/meta.json", META)
        archive.writestr("hero.module/module.html", HTML)
        with archive.open("hero.module/fields.json", "w", force_zip64=True) as stream:
            chunk = b" " * (1024 * 1024)
            for _ in range(100):
                stream.write(chunk)
    assert path.stat().st_size < 2 * 1024 * 1024
    with pytest.raises(ModuleTooLarge, match=r"hero\.module/fields\.json: is over the limit"):
        read_modules(path)
    assert peak_of(lambda: read_modules(path)) < 8 * 1024 * 1024


def _lying_zip(real: bytes, claimed: int) -> bytes:
    """A zip whose headers claim `claimed` bytes for an entry that inflates to `real`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hero.module/meta.json", META)
        archive.writestr("hero.module/module.html", HTML)
        archive.writestr("hero.module/images/bomb.bin", real)
    data = bytearray(buffer.getvalue())
    # Patch the uncompressed size in the local header and the central directory.
    name = b"hero.module/images/bomb.bin"
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := data.find(signature, start)) >= 0:
            start = at + 4
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", data, at + offset, claimed)
    return bytes(data)


def test_a_zip_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("hero.module/meta.json", META)
        archive.writestr("hero.module/module.html", HTML)
        archive.writestr("hero.module/images/zeros.bin", bytes(4 * 1024 * 1024))
    with pytest.raises(ModuleTooLarge, match="a zip bomb"):
        read_modules(bomb)


def test_a_zip_whose_headers_lie_about_sizes_is_refused() -> None:
    data = _lying_zip(bytes(3 * 1024 * 1024), claimed=100)
    with pytest.raises((InvalidModuleArchive, ModuleTooLarge)) as caught:
        read_modules(data)
    assert "damaged zip" in str(caught.value) or "zip bomb" in str(caught.value)


def test_a_zip_with_a_symbolic_link_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hero.module/meta.json", META)
        link = zipfile.ZipInfo("hero.module/module.html")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidModuleArchive, match=r"symbolic link in zip: 'hero\.module/module"):
        read_modules(buffer.getvalue())


@pytest.mark.parametrize("name", ["/etc/hero.module/meta.json", "../hero.module/meta.json"])
def test_a_zip_with_absolute_or_dotdot_paths_is_refused(name: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, META)
    with pytest.raises(InvalidModuleArchive, match="unsafe path in zip"):
        read_modules(buffer.getvalue())


def test_a_symbolic_link_in_a_module_folder_is_refused(tmp_path: Path) -> None:
    folder = module_dir(tmp_path)
    os.symlink("/etc/passwd", folder / "module.css")
    with pytest.raises(InvalidModuleArchive, match="symbolic link in the module folder"):
        read_module(folder)


@pytest.mark.slow
def test_a_module_folder_with_10000_files_is_refused(tmp_path: Path) -> None:
    folder = module_dir(tmp_path)
    (folder / "images").mkdir()
    for i in range(10_000):
        (folder / "images" / f"{i}.txt").write_bytes(b"x")
    with pytest.raises(ModuleTooLarge, match="more than 200 files besides the module's own"):
        read_module(folder)


def test_invalid_utf8_is_refused_naming_the_file_and_byte(tmp_path: Path) -> None:
    folder = module_dir(tmp_path, module__html=b"<h1>caf\xe9</h1>")
    with pytest.raises(InvalidModuleArchive, match=r"hero\.module/module\.html: not valid UTF-8"):
        read_module(folder)


def test_duplicate_json_keys_are_refused_with_file_line_and_path(tmp_path: Path) -> None:
    fields = (
        b'[\n  {\n    "name": "title",\n    "label": "A",\n    "label": "B",\n'
        b'    "type": "text"\n  }\n]\n'
    )
    folder = module_dir(tmp_path, fields__json=fields)
    with pytest.raises(InvalidModuleJson) as caught:
        read_module(folder)
    message = caught.value.message
    assert "hero.module/fields.json: line 5" in message
    assert "'label' appears twice in [0]" in message and "keep one" in message


def test_invalid_json_is_refused_with_file_and_line(tmp_path: Path) -> None:
    folder = module_dir(tmp_path, meta__json=b'{\n  "label": "Hero",\n  "global": fals\n}')
    with pytest.raises(InvalidModuleJson, match=r"hero\.module/meta\.json: line 3 column"):
        read_module(folder)


def test_an_invalid_config_names_the_file_and_json_path(tmp_path: Path) -> None:
    fields = b'[{"name": "bad name", "label": "A", "type": "text"}]'
    folder = module_dir(tmp_path, fields__json=fields)
    with pytest.raises(InvalidHubSpotConfig) as caught:
        read_module(folder)
    assert caught.value.message.startswith("hero.module/fields.json: fields > bad name > name:")
    assert caught.value.code == "invalid_hubspot_config"


def test_unknown_keys_are_kept_and_warned_with_a_suggestion(tmp_path: Path) -> None:
    fields = b'[{"name": "title", "lable": "A", "label": "A", "type": "text", "x_new": 1}]'
    module = read_module(module_dir(tmp_path, fields__json=fields))
    assert [str(w) for w in module.warnings] == [
        "fields > title > lable: unknown key, kept as written; did you mean 'label'?",
        "fields > title > x_new: unknown key, kept as written",
    ]
    assert module.config["fields"][0]["lable"] == "A"


def test_a_duplicate_key_is_found_in_its_own_object(tmp_path: Path) -> None:
    fields = (
        b'[\n  {"name": "a", "label": "A", "type": "text"},\n'
        b'  {"name": "b",\n   "label": "B",\n   "type": "text",\n   "label": "C"}\n]'
    )
    with pytest.raises(
        InvalidModuleJson, match=r"fields\.json: line 6: the key 'label'.* in \[1\]"
    ):
        read_module(module_dir(tmp_path, fields__json=fields))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (b'[{"name": "a", "label": "A\\u0000", "type": "text"}]', r"holds \\u0000 \(NUL\)"),
        (b'[{"name": "a", "label": "A", "type": "number", "max": 99999999999999999999}]',
         "does not fit in 64 bits"),
    ],
)  # fmt: skip
def test_json_values_postgresql_cannot_store_are_refused(
    tmp_path: Path, fields: bytes, message: str
) -> None:
    with pytest.raises(InvalidModuleJson, match=message):
        read_module(module_dir(tmp_path, fields__json=fields))


def test_json_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(InvalidModuleJson, match="nested too deeply"):
        read_module(module_dir(tmp_path, fields__json=deep))
    group: dict[str, object] = {"name": "a", "label": "a", "type": "text"}
    for _ in range(40):
        group = {"name": "g", "label": "g", "type": "group", "children": [group]}
    with pytest.raises(InvalidHubSpotConfig, match="groups nested more than 32 deep"):
        read_module(module_dir(tmp_path / "2", fields__json=json.dumps([group]).encode()))


def test_a_0_byte_module_html_imports_and_stays_empty(tmp_path: Path) -> None:
    module = read_module(module_dir(tmp_path, module__html=b""))
    assert module.html == ""


def test_a_meta_json_without_label_or_with_null_imports_named_by_its_folder(
    tmp_path: Path,
) -> None:
    no_label = read_module(
        module_dir(tmp_path / "a", meta__json=b'{"host_template_types": ["ANY"]}')
    )
    assert no_label.name == "hero"
    null = read_module(
        module_dir(tmp_path / "b", meta__json=b'{"label": null, "content_types": ["SITE_PAGE"]}')
    )
    assert null.name == "hero" and null.config["meta"]["label"] is None
