"""Read HubSpot module folders and zips, and write them back without losing a byte.

Reading takes a zip, one `NAME.module/` folder, or a folder holding many (a theme's
`modules/`), and refuses anything unsafe or oversized before it is stored: absolute
paths, `..`, links, special files, too many files, too many bytes (counted while
inflating, whatever the zip's headers claim), text that is not UTF-8, JSON with duplicate
keys. Every file of a module folder is kept: the five HubSpot files become the template,
the rest (`_locales/`, images…) travel in `hubspot_config["files"]`.

Writing is deterministic: the same template always gives byte-identical zips (fixed
timestamps and permissions, sorted entries), so a zip's hash names its content.
"""

from __future__ import annotations

import base64
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from templator.hubspot import jsontext
from templator.hubspot.config import (
    MAX_FILES,
    MAX_FILES_BYTES,
    MODULE_FILES,
    ConfigWarning,
    file_bytes,
    safe_relative_path,
    validate_hubspot_config,
)
from templator.hubspot.errors import InvalidHubSpotConfig, InvalidModuleArchive, ModuleTooLarge

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MAX_TEXT_BYTES = 1024 * 1024  # each of meta.json, fields.json, module.html/css/js
MAX_MODULES = 500
MAX_ENTRIES = 5000  # files in one zip or folder tree, all modules together
MAX_INFLATED_BYTES = 100 * 1024 * 1024  # all modules together
MAX_RATIO = 200  # inflated/compressed of one zip entry larger than a megabyte
IGNORED = ("__MACOSX", ".DS_Store", "Thumbs.db")


@dataclass(frozen=True, slots=True)
class ModuleContent:
    """Everything a module is made of: the template's columns and its hubspot_config."""

    name: str
    html: str
    css: str | None
    js: str | None
    config: dict[str, Any]
    warnings: tuple[ConfigWarning, ...] = field(default=())

    @property
    def folder(self) -> str:
        """The folder name it was read from, else one made from its name."""
        source = self.config.get("source")
        kept = source.get("folder") if isinstance(source, dict) else None
        return kept if isinstance(kept, str) else f"{slugify(self.name)}.module"


def slugify(name: str) -> str:
    """A safe folder name: lowercase ascii letters, digits and dashes, never empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:100].strip("-")
    return slug or "module"


# --- writing ---------------------------------------------------------------------------

_META_ORDER = ("label", "icon", "module_id", "global", "content_types", "host_template_types")
_FIELD_ORDER = ("name", "label", "type", "id", "required", "locked", "occurrence", "children")


def _canonical(value: Any, order: tuple[str, ...] = ()) -> Any:
    """A config never imported (made by the generator or the API) is written in one fixed
    key order, so equal content gives equal bytes whatever order its dicts came in."""
    if isinstance(value, dict):
        keys = [k for k in order if k in value] + sorted(k for k in value if k not in order)
        return {k: _canonical(value[k], _FIELD_ORDER if k == "children" else ()) for k in keys}
    if isinstance(value, list):
        return [_canonical(item, order) for item in value]
    return value


def _json_file(config: dict[str, Any], key: str, filename: str) -> str:
    value = config.get(key)
    source = config.get("source")
    original = source.get(filename) if isinstance(source, dict) else None
    if isinstance(original, str):
        parsed = jsontext.loads(original, file=filename)
        if jsontext.same(parsed, value):
            return original
        return jsontext.edit_text(original, parsed, jsontext.ordered_like(value, parsed))
    order = _META_ORDER if key == "meta" else _FIELD_ORDER
    return jsontext.dumps_like(_canonical(value, order), None)


def module_files(module: ModuleContent) -> dict[str, bytes]:
    """The files of the module folder by relative path: only those it had (or needs)."""
    config = module.config
    source = config.get("source")
    out = {"meta.json": _json_file(config, "meta", "meta.json").encode()}
    fields = config.get("fields") or []
    # An imported module without fields.json (fields.js modules) gets none back, unless
    # fields were added since.
    if not (isinstance(source, dict) and "fields.json" not in source and not fields):
        out["fields.json"] = _json_file(config, "fields", "fields.json").encode()
    out["module.html"] = module.html.encode()
    if module.css is not None:
        out["module.css"] = module.css.encode()
    if module.js is not None:
        out["module.js"] = module.js.encode()
    for name, entry in (config.get("files") or {}).items():
        out[name] = file_bytes(entry)
    return out


def _unique_folders(modules: list[ModuleContent]) -> list[str]:
    seen: set[str] = set()
    out = []
    for module in modules:
        stem = module.folder.removesuffix(".module")
        folder, n = module.folder, 1
        while folder.lower() in seen:
            n += 1
            folder = f"{stem}-{n}.module"
        seen.add(folder.lower())
        out.append(folder)
    return out


def build_modules_zip(modules: list[ModuleContent]) -> bytes:
    """A zip of `<folder>.module/` folders, ready for `hs cms upload`; byte-identical for
    equal input."""
    entries = []
    for module, folder in zip(modules, _unique_folders(modules), strict=True):
        entries += [(f"{folder}/{name}", data) for name, data in module_files(module).items()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            archive.writestr(info, data, compresslevel=9)
    return buffer.getvalue()


def build_module_zip(module: ModuleContent) -> bytes:
    """A zip holding one `<folder>.module/`."""
    return build_modules_zip([module])


def write_modules(modules: list[ModuleContent], dest_dir: Path) -> list[Path]:
    """Write each module as `dest_dir/<folder>.module/`; return the folders."""
    written = []
    for module, folder_name in zip(modules, _unique_folders(modules), strict=True):
        folder = dest_dir / folder_name
        for name, data in module_files(module).items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        written.append(folder)
    return written


def write_module_folder(module: ModuleContent, dest_dir: Path) -> Path:
    """Write `<folder>.module/` into `dest_dir`; return its path."""
    return write_modules([module], dest_dir)[0]


# --- reading ---------------------------------------------------------------------------


def _text(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidModuleArchive(
            f"{where}: not valid UTF-8 (byte {exc.start}); save the file as UTF-8",
            field=where,
        ) from None
    if "\x00" in text:
        raise InvalidModuleArchive(
            f"{where}: holds a NUL character, which a text file cannot; remove it",
            field=where,
        )
    return text


def _other_file(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        return {"base64": base64.b64encode(data).decode()}
    return {"text": text}


def _from_files(folder: str, files: dict[str, bytes]) -> ModuleContent:
    where = folder or "the module"
    if "meta.json" not in files:
        raise InvalidModuleArchive(f"{where}: no meta.json; is this a module folder?", field=where)
    if "module.html" not in files:
        raise InvalidModuleArchive(f"{where}: no module.html", field=f"{where}/module.html")
    # An empty module.html is kept: HubSpot stores such modules and `hs fetch` writes them.
    texts = {name: _text(files[name], f"{where}/{name}") for name in MODULE_FILES if name in files}
    meta = jsontext.loads(texts["meta.json"], file=f"{where}/meta.json")
    fields = (
        jsontext.loads(texts["fields.json"], file=f"{where}/fields.json")
        if "fields.json" in texts
        else []
    )
    source: dict[str, Any] = {"meta.json": texts["meta.json"]}
    if folder:
        source["folder"] = folder
    if "fields.json" in texts:
        source["fields.json"] = texts["fields.json"]
    config: dict[str, Any] = {"meta": meta, "fields": fields, "source": source}
    others = {name: _other_file(data) for name, data in sorted(files.items())}
    others = {k: v for k, v in others.items() if k not in MODULE_FILES}
    if others:
        config["files"] = others
    try:
        warnings = validate_hubspot_config(config)
    except InvalidHubSpotConfig as exc:
        # Name the file: the config's paths are `meta > x` / `fields > name > x`.
        file = "meta.json" if (exc.field or "").startswith("meta") else "fields.json"
        error = InvalidHubSpotConfig(f"{where}/{file}: {exc.message}", field=exc.field)
        error.problems = exc.problems
        raise error from None
    label = meta.get("label") if isinstance(meta, dict) else None
    stem = PurePosixPath(folder).name.removesuffix(".module")
    name = label if isinstance(label, str) and label.strip() else stem
    return ModuleContent(
        name=(name or "module")[:200],
        html=texts["module.html"],
        css=texts.get("module.css"),
        js=texts.get("module.js"),
        config=config,
        warnings=tuple(warnings),
    )


class _Budget:
    """Counts files and bytes over a whole read, refusing past the limits."""

    def __init__(self) -> None:
        self.entries = 0
        self.bytes = 0
        self.per_module: dict[str, tuple[int, int]] = {}

    def file(self, folder: str, name: str, size: int) -> int:
        """Account for one file; return the most bytes it may hold."""
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise ModuleTooLarge(
                f"more than {MAX_ENTRIES:,} files; import fewer modules at a time", field="file"
            )
        count, other = self.per_module.get(folder, (0, 0))
        limit = MAX_TEXT_BYTES if name in MODULE_FILES else MAX_FILES_BYTES - other
        if name not in MODULE_FILES:
            count += 1
            if count > MAX_FILES:
                raise ModuleTooLarge(
                    f"{folder or 'the module'}: more than {MAX_FILES} files besides the "
                    "module's own; remove what HubSpot does not need",
                    field=folder or "file",
                )
            other += size
        self.per_module[folder] = (count, other)
        self._check(folder, name, size, limit)
        self.bytes += size
        if self.bytes > MAX_INFLATED_BYTES:
            raise ModuleTooLarge(
                f"the modules hold more than {MAX_INFLATED_BYTES:,} bytes", field="file"
            )
        return limit

    @staticmethod
    def _check(folder: str, name: str, size: int, limit: int) -> None:
        if size > limit:
            where = f"{folder}/{name}" if folder else name
            what = (
                f"is over the limit of {MAX_TEXT_BYTES:,} bytes"
                if name in MODULE_FILES
                else f"takes the module's other files over {MAX_FILES_BYTES:,} bytes"
            )
            raise ModuleTooLarge(f"{where}: {what}", field=where)


def _read_capped(stream: IO[bytes], limit: int, where: str) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ModuleTooLarge(
            f"{where}: inflates past its limit of {limit:,} bytes (a zip bomb?)", field=where
        )
    return data


def _split(path: PurePosixPath) -> tuple[str, str] | None:
    """(module folder, path inside it) for a path in a zip or tree; None when outside any."""
    parts = path.parts
    for i, part in enumerate(parts[:-1]):
        if part.endswith(".module"):
            return "/".join(parts[: i + 1]), "/".join(parts[i + 1 :])
    return None


def _zip_modules(archive: zipfile.ZipFile) -> dict[str, dict[str, bytes]]:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise ModuleTooLarge(f"the zip holds more than {MAX_ENTRIES:,} entries", field="file")
    names = [i.filename for i in infos if not i.is_dir()]
    in_folders = any(_split(PurePosixPath(n)) for n in names)
    budget = _Budget()
    planned: list[tuple[zipfile.ZipInfo, str, str, int]] = []
    # First every check on what the headers say, then the reading (capped as it
    # inflates, since headers can lie): a bad entry is refused before anything is read.
    for info in infos:
        name = info.filename
        if (
            name.startswith("/")
            or "\\" in name
            or re.match(r"^[A-Za-z]:", name)
            or ".." in PurePosixPath(name).parts
        ):
            raise InvalidModuleArchive(
                f"unsafe path in zip: {name!r} (absolute or with ..); zip the module folder itself",
                field=name,
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidModuleArchive(
                f"symbolic link in zip: {name!r}; zip the files it points to instead",
                field=name,
            )
        if info.is_dir() or any(p in IGNORED for p in PurePosixPath(name).parts):
            continue
        split = _split(PurePosixPath(name))
        if split is None:
            if in_folders:
                continue  # theme files beside the modules (theme.json, templates/…)
            split = ("", name)
        folder, inner = split
        if not safe_relative_path(inner):
            raise InvalidModuleArchive(f"unsafe path in zip: {name!r}", field=name)
        limit = budget.file(folder, inner, info.file_size)
        if info.file_size > 1024 * 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ModuleTooLarge(
                f"{name}: compressed {info.file_size // max(info.compress_size, 1):,} to 1 "
                "(a zip bomb?)",
                field=name,
            )
        planned.append((info, folder, inner, limit))
    modules: dict[str, dict[str, bytes]] = {}
    for info, folder, inner, limit in planned:
        with archive.open(info) as stream:
            modules.setdefault(folder, {})[inner] = _read_capped(stream, limit, info.filename)
    return modules


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of every file under root; refuses links and special files."""
    stack = [root]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                rel = path.relative_to(root).as_posix()
                if entry.name in IGNORED:
                    continue
                if entry.is_symlink():
                    raise InvalidModuleArchive(
                        f"symbolic link in the module folder: {rel}; copy the file instead",
                        field=rel,
                    )
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    yield rel, path
                else:
                    raise InvalidModuleArchive(f"not a regular file: {rel}", field=rel)


def _tree_modules(root: Path) -> dict[str, dict[str, bytes]]:
    budget = _Budget()
    single = root.name.endswith(".module") or (root / "meta.json").is_file()
    name = root.name if root.name.endswith(".module") else f"{root.name}.module"
    modules: dict[str, dict[str, bytes]] = {}
    planned: list[tuple[Path, str, str, int]] = []
    for rel, path in _walk(root):
        if single:
            folder, inner = name, rel
        else:
            split = _split(PurePosixPath(rel))
            if split is None:
                continue  # not inside a module folder
            folder, inner = split
        planned.append((path, folder, inner, budget.file(folder, inner, path.stat().st_size)))
    # Walked and counted first: a folder over a limit is refused before a byte is read.
    for path, folder, inner, limit in planned:
        with path.open("rb") as stream:
            modules.setdefault(folder, {})[inner] = _read_capped(stream, limit, str(path))
    return modules


def _collect(source: Path | bytes) -> dict[str, dict[str, bytes]]:
    if isinstance(source, bytes):
        handle: IO[bytes] | Path = io.BytesIO(source)
    elif source.is_dir():
        return _tree_modules(source)
    else:
        handle = source
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError):
        raise InvalidModuleArchive(
            "not a zip file (give a zip, a NAME.module folder or a folder of them)",
            field="file",
        ) from None
    with archive:
        try:
            return _zip_modules(archive)
        except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
            raise InvalidModuleArchive(f"a damaged zip: {exc}", field="file") from None


@dataclass(frozen=True, slots=True)
class Refusal:
    """A module of a folder or zip that does not import, and why."""

    folder: str
    error: InvalidHubSpotConfig | InvalidModuleArchive

    @property
    def message(self) -> str:
        """Why it was refused."""
        return self.error.message


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a folder or zip holds: the modules that read, and those refused with why."""

    modules: list[ModuleContent]
    refused: list[Refusal]


def _relative_folders(folders: list[str]) -> dict[str, str]:
    """Each module folder's path below the folders all of them share: a theme's
    `modules/buttons/button.module` and `modules/hero.module` keep `buttons/`."""
    parents = [PurePosixPath(f).parent.parts for f in folders]
    common = 0
    while all(len(p) > common for p in parents) and len({p[common] for p in parents}) == 1:
        common += 1
    return {f: "/".join(PurePosixPath(f).parts[common:]) for f in folders}


def read_all(source: Path | bytes) -> ReadResult:
    """Every module of a zip, a `.module` folder, or a folder holding `.module` folders
    (the Design Manager folders they sit in kept in each one's `folder`); a module that
    does not read is refused with its reason while the others still read. A problem of
    the whole source (an unsafe path, over a limit, no module at all) is raised."""
    found = _collect(source)
    if not found:
        raise InvalidModuleArchive(
            "no module found: expected NAME.module folders holding meta.json and module.html",
            field="file",
        )
    if len(found) > MAX_MODULES:
        raise ModuleTooLarge(f"more than {MAX_MODULES} modules at once", field="file")
    relative = _relative_folders([f for f in found if f])
    modules, refused = [], []
    for folder, files in sorted(found.items()):
        kept = relative.get(folder, folder)
        try:
            modules.append(_from_files(kept, files))
        except (InvalidHubSpotConfig, InvalidModuleArchive) as exc:
            refused.append(Refusal(kept or "module", exc))
    return ReadResult(modules, refused)


def read_modules(source: Path | bytes) -> list[ModuleContent]:
    """Every module of a zip, a `.module` folder, or a folder holding `.module` folders;
    the first module that does not read is raised."""
    result = read_all(source)
    if result.refused:
        raise result.refused[0].error
    return result.modules


def read_module(source: Path | bytes) -> ModuleContent:
    """Exactly one module: a `.module` folder, or a zip of one (or of its files)."""
    modules = read_modules(source)
    if len(modules) > 1:
        raise InvalidModuleArchive(
            f"found {len(modules)} modules; import them with `templator module import`",
            field="file",
        )
    return modules[0]
