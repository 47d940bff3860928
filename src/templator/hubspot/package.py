"""Build and read HubSpot module folders and zips.

Export is deterministic: the same template always gives byte-identical zips (fixed
timestamps and permissions, fixed entry order, canonical JSON), so a zip's hash names
its content. Import refuses anything unsafe: absolute paths, `..`, links, too many
entries or too many bytes once inflated.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from templator.hubspot.errors import InvalidHubSpotConfig, InvalidModuleArchive
from templator.hubspot.schemas import HubSpotConfig

FILES = ("meta.json", "fields.json", "module.html", "module.css", "module.js")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MAX_ENTRIES = 64
MAX_INFLATED_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ModuleContent:
    """Everything a module is made of."""

    name: str
    html: str
    css: str | None
    js: str | None
    config: HubSpotConfig


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "function-wrap"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def validate_hubspot_config(data: object) -> HubSpotConfig:
    """Parse a hubspot_config; refuse an invalid one with the path of the bad field."""
    try:
        return HubSpotConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Discriminated unions add the tag to the location: drop it from the path.
        raw = first["loc"]
        loc = tuple(
            part
            for i, part in enumerate(raw)
            if not (i > 0 and isinstance(raw[i - 1], int) and part in _FIELD_TAGS)
        )
        path = _path(loc) or "hubspot_config"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "union_tag_invalid":
            tag = (
                first.get("input", {}).get("type") if isinstance(first.get("input"), dict) else None
            )
            message = f"unknown field type {tag!r}"
            path = f"{path}.type"
        elif first["type"] == "extra_forbidden":
            message = "unknown key (not part of HubSpot's module format)"
        raise InvalidHubSpotConfig(f"{path}: {message}", field=path) from None


_FIELD_TAGS = {
    "text",
    "richtext",
    "image",
    "url",
    "link",
    "boolean",
    "number",
    "choice",
    "color",
    "font",
    "cta",
    "group",
    "date",
    "datetime",
    "email",
    "file",
    "icon",
    "page",
    "blog",
    "form",
    "menu",
    "simplemenu",
    "logo",
    "video",
    "videoplayer",
    "embed",
    "hubdbrow",
    "hubdbtable",
    "tag",
    "spacing",
    "backgroundimage",
    "alignment",
    "border",
    "gradient",
    "textalignment",
    "crmobject",
    "crmobjectproperty",
    "followupemail",
    "meeting",
    "payment",
    "product",
    "hubspotvideo",
}


def slugify(name: str) -> str:
    """A safe folder name: lowercase ascii letters, digits and dashes, never empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:100].strip("-")
    return slug or "module"


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def module_files(module: ModuleContent) -> dict[str, str]:
    """The five files of the module folder, by name."""
    return {
        "meta.json": _json(module.config.meta_json()),
        "fields.json": _json(module.config.fields_json()),
        "module.html": module.html,
        "module.css": module.css or "",
        "module.js": module.js or "",
    }


def build_module_zip(module: ModuleContent) -> bytes:
    """A zip holding `<slug>.module/` ready for `hs cms upload`; byte-identical for equal input."""
    folder = f"{slugify(module.name)}.module"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in sorted(module_files(module).items()):
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            archive.writestr(info, text.encode(), compresslevel=9)
    return buffer.getvalue()


def write_module_folder(module: ModuleContent, dest_dir: Path) -> Path:
    """Write `<slug>.module/` into `dest_dir`; return its path."""
    folder = dest_dir / f"{slugify(module.name)}.module"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in module_files(module).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _from_files(name: str, files: dict[str, str]) -> ModuleContent:
    missing = [f for f in ("meta.json", "module.html") if f not in files]
    if missing:
        raise InvalidModuleArchive(f"the module has no {missing[0]}", field=missing[0])
    try:
        meta = json.loads(files["meta.json"])
        fields = json.loads(files.get("fields.json", "[]"))
    except json.JSONDecodeError as exc:
        raise InvalidModuleArchive(
            f"invalid JSON in the module: {exc}", field="meta.json"
        ) from None
    config = validate_hubspot_config({"meta": meta, "fields": fields})
    # Prefer the human label as the name when it maps to the same folder, so that
    # export → import → export gives the same bytes either way.
    label = config.meta.label
    return ModuleContent(
        name=label if not name or slugify(label) == name else name,
        html=files["module.html"],
        css=files.get("module.css") or None,
        js=files.get("module.js") or None,
        config=config,
    )


def _read_zip(data: bytes) -> ModuleContent:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidModuleArchive("not a zip file", field="file") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise InvalidModuleArchive(f"more than {MAX_ENTRIES} entries in the zip", field="file")
        if sum(i.file_size for i in infos) > MAX_INFLATED_BYTES:
            raise InvalidModuleArchive(
                f"the zip inflates to more than {MAX_INFLATED_BYTES:,} bytes", field="file"
            )
        files: dict[str, str] = {}
        folders: set[str] = set()
        for info in infos:
            path = PurePosixPath(info.filename)
            if info.filename.startswith("/") or ".." in path.parts or "\\" in info.filename:
                raise InvalidModuleArchive(f"unsafe path in zip: {info.filename!r}", field="file")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise InvalidModuleArchive(f"symbolic link in zip: {info.filename!r}", field="file")
            if info.is_dir():
                continue
            parts = path.parts
            if len(parts) == 2 and parts[0].endswith(".module"):
                folders.add(parts[0])
            elif len(parts) != 1:
                continue
            if path.name in FILES:
                files[path.name] = archive.read(info).decode("utf-8")
        if len(folders) > 1:
            raise InvalidModuleArchive("the zip holds more than one .module folder", field="file")
    name = next(iter(folders), "").removesuffix(".module")
    return _from_files(name, files)


def read_module(source: Path | bytes) -> ModuleContent:
    """Read a `.module` folder or a zip (one `.module` folder, or its files at the root)."""
    if isinstance(source, bytes):
        return _read_zip(source)
    if source.is_dir():
        files = {}
        for name in FILES:
            path = source / name
            if path.is_symlink():
                raise InvalidModuleArchive(f"symbolic link in module: {name}", field="file")
            if path.is_file():
                files[name] = path.read_text(encoding="utf-8")
        return _from_files(source.name.removesuffix(".module"), files)
    if source.stat().st_size > MAX_INFLATED_BYTES:
        raise InvalidModuleArchive("the zip is larger than the limit", field="file")
    return _read_zip(source.read_bytes())
