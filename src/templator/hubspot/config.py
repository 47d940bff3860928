"""A template's `hubspot_config`: validate it, warn of unknown keys, keep it as written.

`hubspot_config` is `{"meta": {...}, "fields": [...]}` exactly as meta.json and
fields.json hold them, plus, for an imported module, what is needed to write the folder
back byte for byte:

- `source`: `{"folder": "Card section.module", "meta.json": "<text>", "fields.json":
  "<text>"}` — the folder name and the two files' text as they were read. While `meta` /
  `fields` are unchanged the texts are written back as they were; after an edit the
  edited value is written in the original's key order and indentation.
- `files`: every other file of the module folder (`_locales/…`, images…) by relative
  path: `{"text": "..."}` for UTF-8 text, `{"base64": "..."}` for anything else.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ValidationError

from templator.hubspot import jsontext
from templator.hubspot.errors import InvalidHubSpotConfig, ModuleTooLarge
from templator.hubspot.schemas import (
    FIELD_TYPES,
    HUBSPOT_KEYS,
    UNKNOWN_TYPE,
    HubSpotConfig,
    UnknownTypeField,
)

MODULE_FILES = ("meta.json", "fields.json", "module.html", "module.css", "module.js")
CONFIG_KEYS = ("meta", "fields", "source", "files")
MAX_FILES = 200
MAX_FILES_BYTES = 5 * 1024 * 1024
MAX_SOURCE_CHARS = 1024 * 1024
MAX_DEPTH = 32  # groups in groups; HubSpot's editor stops far sooner


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """A key we do not model (kept as written), or another thing worth a look."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


_TAGS = (*FIELD_TYPES, UNKNOWN_TYPE, "other")


def _path(loc: tuple[int | str, ...], data: Any) -> str:
    """A validation error's place by field NAMES: `fields > hero > cta_group > style >
    default` (an index only where an item has no name)."""
    parts: list[str] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(part, str) and (
            part in ("function-after", "function-before", "function-wrap")
            or (i > 0 and isinstance(loc[i - 1], int) and part in _TAGS)
        ):
            continue  # a validator's or the discriminated union's tag, not a key
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            parts.append(name if isinstance(name, str) and name else f"[{part}]")
            node = item
            continue
        if part != "children" or not parts:
            parts.append(part)
        node = node.get(part) if isinstance(node, dict) else None
    return " > ".join(parts)


def _view(data: dict[str, Any]) -> dict[str, Any]:
    """A copy to validate: field types lower-cased (HubSpot's own boilerplate writes
    "Group"); only the field objects are copied (validation reads, never writes, their
    values), and the stored config is never changed."""

    def lower(fields: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InvalidHubSpotConfig(
                f"fields: groups nested more than {MAX_DEPTH} deep", field="fields"
            )
        if not isinstance(fields, list):
            return fields
        out = []
        for field in fields:
            if isinstance(field, dict):
                field = dict(field)
                if isinstance(field.get("type"), str):
                    field["type"] = field["type"].lower()
                if "children" in field:
                    field["children"] = lower(field["children"], depth + 1)
            out.append(field)
        return out

    return {"meta": data.get("meta"), "fields": lower(data.get("fields", []), 0)}


def _problem(error: Any, data: Any) -> tuple[str, str]:
    """(path, message) of one validation error."""
    path = _path(error["loc"], data) or "hubspot_config"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "union_tag_not_found":
        return f"{path} > type", "a field needs a type"
    return path, message


def _raise(exc: ValidationError, data: Any) -> None:
    """Every problem of the config in one error: the first names `.field`, the message
    lists them all (`.problems` holds them one by one)."""
    problems = [_problem(error, data) for error in exc.errors()]
    unique = list(dict.fromkeys(problems))
    message = "; ".join(f"{path}: {message}" for path, message in unique)
    error = InvalidHubSpotConfig(message, field=unique[0][0])
    error.problems = tuple(unique)
    raise error from None


def _known_keys(model: BaseModel) -> list[str]:
    return [info.alias or name for name, info in type(model).model_fields.items()]


def _warnings(node: Any, path: str, out: list[ConfigWarning]) -> None:
    if isinstance(node, list):
        for i, item in enumerate(node):
            if not isinstance(item, BaseModel | list):
                continue  # a value (a default, a content type): no keys to warn of
            name = getattr(item, "name", None)
            _warnings(item, f"{path} > {name}" if isinstance(name, str) else f"{path}[{i}]", out)
        return
    if not isinstance(node, BaseModel):
        return
    if isinstance(node, UnknownTypeField):
        close = get_close_matches(node.type.lower(), FIELD_TYPES, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        out.append(
            ConfigWarning(
                f"{path} > type",
                f"field type {node.type!r} is not one this checker knows; kept as written, "
                f"its properties not checked{hint}",
            )
        )
        return
    for key in node.model_extra or {}:
        if key in HUBSPOT_KEYS:
            continue
        close = get_close_matches(key, _known_keys(node), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        out.append(ConfigWarning(f"{path} > {key}", f"unknown key, kept as written{hint}"))
    for name, info in type(node).model_fields.items():
        key = info.alias or name
        _warnings(
            getattr(node, name),
            f"{path} > {key}" if path and key != "children" else (path or key),
            out,
        )


def _check_source(source: Any) -> None:
    if not isinstance(source, dict):
        raise InvalidHubSpotConfig("source: must be an object", field="source")
    for key, value in source.items():
        if key == "folder":
            # The module's folder, with the Design Manager folders it sits in
            # (`buttons/button.module`): written back in the same place.
            if (
                not isinstance(value, str)
                or not value.endswith(".module")
                or not safe_relative_path(value)
                or any(part.startswith(".") for part in value.split("/"))
                or any(part.endswith(".module") for part in value.split("/")[:-1])
                or len(value) > 400
            ):
                raise InvalidHubSpotConfig(
                    "source.folder: must be a relative folder path ending in .module",
                    field="source.folder",
                )
        elif key in ("meta.json", "fields.json"):
            if not isinstance(value, str) or len(value) > MAX_SOURCE_CHARS:
                raise InvalidHubSpotConfig(
                    f"source.{key}: must be the file's text (at most {MAX_SOURCE_CHARS:,} "
                    "characters)",
                    field=f"source.{key}",
                )
            jsontext.loads(value, file=key)
        else:
            raise InvalidHubSpotConfig(
                f"source.{key}: unknown key (folder, meta.json and fields.json are kept)",
                field=f"source.{key}",
            )


def safe_relative_path(name: str) -> bool:
    """A relative path inside the module folder: no `..`, no absolute path, no backslash."""
    path = PurePosixPath(name)
    return (
        bool(name)
        and not name.startswith("/")
        and "\\" not in name
        and ".." not in path.parts
        and "." not in path.parts
        and "" not in name.split("/")
        and not any(ord(c) < 32 for c in name)
        and len(name) <= 500
    )


def file_bytes(entry: dict[str, str]) -> bytes:
    """The bytes of one `files` entry."""
    if "text" in entry:
        return entry["text"].encode()
    return base64.b64decode(entry["base64"], validate=True)


def _check_files(files: Any) -> None:
    if not isinstance(files, dict):
        raise InvalidHubSpotConfig("files: must be an object of path → file", field="files")
    if len(files) > MAX_FILES:
        raise ModuleTooLarge(f"files: more than {MAX_FILES} files in one module", field="files")
    total = 0
    for name, entry in files.items():
        where = f"files.{name}"
        if not safe_relative_path(name) or name in MODULE_FILES:
            raise InvalidHubSpotConfig(
                f"{where}: not a relative path inside the module folder", field=where
            )
        if (
            not isinstance(entry, dict)
            or len(entry) != 1
            or not (isinstance(entry.get("text"), str) or isinstance(entry.get("base64"), str))
        ):
            raise InvalidHubSpotConfig(
                f'{where}: must be {{"text": "..."}} or {{"base64": "..."}}', field=where
            )
        try:
            total += len(file_bytes(entry))
        except (binascii.Error, ValueError):
            raise InvalidHubSpotConfig(f"{where}: invalid base64", field=where) from None
    if total > MAX_FILES_BYTES:
        raise ModuleTooLarge(
            f"files: the module's other files hold more than {MAX_FILES_BYTES:,} bytes",
            field="files",
        )


def validate_hubspot_config(data: object) -> list[ConfigWarning]:
    """Validate a hubspot_config; refuse an invalid one with the path of the bad field,
    and return warnings for keys we do not know (kept as written)."""
    if not isinstance(data, dict):
        raise InvalidHubSpotConfig("hubspot_config: must be an object", field="hubspot_config")
    unknown = [k for k in data if k not in CONFIG_KEYS]
    if unknown:
        raise InvalidHubSpotConfig(
            f"{unknown[0]}: unknown key (hubspot_config holds {', '.join(CONFIG_KEYS)})",
            field=str(unknown[0]),
        )
    try:
        view = HubSpotConfig.model_validate(_view(data))
    except ValidationError as exc:
        _raise(exc, data)
        raise  # unreachable: _raise always raises
    if "source" in data:
        _check_source(data["source"])
    if "files" in data:
        _check_files(data["files"])
    out: list[ConfigWarning] = []
    _warnings(view, "", out)
    return out


def keep_imported(current: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """`new` with the `source` and `files` of `current` when it does not set its own: an
    edit of meta or fields through the API keeps the module's other files and the
    original text it is written back in (set `"files": {}` to drop the files)."""
    kept = {k: current[k] for k in ("source", "files") if current and k in current and k not in new}
    return new | kept if kept else new
