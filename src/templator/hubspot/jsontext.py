"""JSON as HubSpot modules write it: strict reading, and writing back in the same order.

Reading refuses what a JSON database would silently change (duplicate keys: the last
one would win; NaN/Infinity), and says where: the file, the line and the JSON path.
Writing an edited document reuses the original's key order and indentation, so an edit
through the API changes only what was edited.
"""

from __future__ import annotations

import json
import re
from typing import Any

from templator.hubspot.errors import InvalidModuleJson


def json_path(parts: list[str | int]) -> str:
    """`fields[2].children[0]` style path; `$` for the document itself."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "$"


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _int(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"the number {text} does not fit in 64 bits; HubSpot cannot store it")
    return value


def _find_duplicate(text: str, key: str) -> tuple[int, str]:
    """Line and JSON path of the second occurrence of `key` in one object (for the message)."""
    decoder = json.JSONDecoder(object_pairs_hook=lambda p: p)
    try:
        tree = decoder.decode(text)
    except ValueError:
        return 0, "$"

    def walk(node: Any, path: list[str | int]) -> list[str | int] | None:
        if isinstance(node, list) and all(isinstance(p, tuple) and len(p) == 2 for p in node):
            keys = [k for k, _ in node]
            if keys.count(key) > 1:
                return path
            for k, v in node:
                found = walk(v, [*path, k])
                if found is not None:
                    return found
        elif isinstance(node, list):
            for i, item in enumerate(node):
                found = walk(item, [*path, i])
                if found is not None:
                    return found
        return None

    where = walk(tree, []) or []
    return _second_key_line(text, key), json_path(where)


def _second_key_line(text: str, key: str) -> int:
    """Line of the first key that repeats one of its own object (0 when not found)."""
    containers: list[int] = []
    seen: set[int] = set()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            k = j + 1
            while k < n and text[k] in " \t\r\n":
                k += 1
            if k < n and text[k] == ":" and containers and json.loads(text[i : j + 1]) == key:
                if containers[-1] in seen:
                    return text.count("\n", 0, i) + 1
                seen.add(containers[-1])
            i = j + 1
            continue
        if c in "{[":
            containers.append(i)
        elif c in "}]" and containers:
            containers.pop()
        i += 1
    return 0


def loads(text: str, *, file: str) -> Any:
    """Parse `text`, refusing duplicate keys and NaN; errors name the file, line and path."""
    body = text.removeprefix("\ufeff")  # a BOM is kept in the file, not parsed
    if re.search(r"(?<!\\)(?:\\\\)*\\u0000", body):
        raise InvalidModuleJson(
            f"{file}: a string holds \\u0000 (NUL), which cannot be stored; remove it",
            field=file,
        )
    try:
        return json.loads(body, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int)
    except _Duplicate as dup:
        line, path = _find_duplicate(body, dup.key)
        raise InvalidModuleJson(
            f"{file}: line {line}: the key {dup.key!r} appears twice in {path}; "
            "keep one (HubSpot would silently use the last)",
            field=f"{file}:{path}",
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidModuleJson(
            f"{file}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}",
            field=file,
        ) from None
    except RecursionError:
        raise InvalidModuleJson(f"{file}: nested too deeply to be a module", field=file) from None
    except ValueError as exc:
        raise InvalidModuleJson(f"{file}: {exc}", field=file) from None


def same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1 from 1.0 and true from 1 (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def ordered_like(value: Any, model: Any) -> Any:
    """`value` with its object keys in `model`'s order where they exist in both (new keys
    after), recursively; list items are matched by their `name` when they have one."""
    if isinstance(value, dict):
        template = model if isinstance(model, dict) else {}
        keys = [k for k in template if k in value] + [k for k in value if k not in template]
        return {k: ordered_like(value[k], template.get(k)) for k in keys}
    if isinstance(value, list):
        items = model if isinstance(model, list) else []
        by_name = {
            item["name"]: item
            for item in items
            if isinstance(item, dict) and isinstance(item.get("name"), str)
        }
        out = []
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            match = by_name.get(name) if isinstance(name, str) else None
            if match is None and i < len(items):
                match = items[i]
            out.append(ordered_like(item, match))
        return out
    return value


def _indent_of(text: str) -> str | int:
    found = re.search(r"\n([ \t]+)\S", text)
    if found is None:
        return 2
    indent = found.group(1)
    return indent if "\t" in indent else len(indent)


def _style(original: str) -> dict[str, Any]:
    """How `original` writes JSON: indent, `"key" : value` (Jackson, as `hs fetch` does) or
    `"key": value`, and whether non-ASCII is escaped."""
    spaced = len(re.findall(r'"\s+:', original)) > len(re.findall(r'":', original))
    escaped = bool(re.search(r"\\u[0-9a-fA-F]{4}", original)) and original.isascii()
    return {
        "indent": _indent_of(original),
        "separators": (",", " : " if spaced else ": "),
        "ensure_ascii": escaped,
    }


def _newlines(text: str, original: str) -> str:
    return text.replace("\n", "\r\n") if "\r\n" in original else text


def dumps_like(value: Any, original: str | None) -> str:
    """`value` as JSON text, shaped like `original` (indent, separators, line endings,
    BOM, final newline) when given."""
    if original is None:
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
    text = json.dumps(value, **_style(original))
    ending = "\r\n" if original.endswith("\r\n") else "\n" if original.endswith("\n") else ""
    bom = "\ufeff" if original.startswith("\ufeff") else ""
    return bom + _newlines(text, original) + ending


_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\r\n]*")
Span = tuple[int, int]


def _spans(text: str, i: int, path: tuple[Any, ...], out: dict[tuple[Any, ...], Span]) -> int:
    """Record the (start, end) offsets of every value of the document, by path."""
    i = _WS.match(text, i).end()  # type: ignore[union-attr]
    start = i
    if text[i] in "{[":
        closing = "}" if text[i] == "{" else "]"
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        index = 0
        while text[i] != closing:
            if closing == "}":
                key, i = _DECODER.raw_decode(text, i)
                i = _WS.match(text, i).end() + 1  # type: ignore[union-attr]  # the colon
                i = _spans(text, i, (*path, key), out)
            else:
                i = _spans(text, i, (*path, index), out)
                index += 1
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if text[i] == ",":
                i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        out[path] = (start, i + 1)
        return i + 1
    _, end = _DECODER.raw_decode(text, i)
    out[path] = (start, end)
    return int(end)


def _changes(
    old: Any, new: Any, path: tuple[Any, ...], out: list[tuple[tuple[Any, ...], Any]]
) -> None:
    """The smallest nodes to rewrite: values that differ, or containers whose keys or
    length changed."""
    if same(old, new):
        return
    if isinstance(old, dict) and isinstance(new, dict) and list(old) == list(new):
        for key in old:
            _changes(old[key], new[key], (*path, key), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _changes(a, b, (*path, i), out)
    elif isinstance(old, list) and isinstance(new, list) and 0 < len(new) < len(old):
        kept, removed = 0, []
        for i, item in enumerate(old):
            if kept < len(new) and same(item, new[kept]):
                kept += 1
            else:
                removed.append(i)
        if kept == len(new):
            out += [((*path, i), _REMOVED) for i in removed]
        else:
            out.append((path, new))
    else:
        out.append((path, new))


_REMOVED = object()  # marks a list item deleted by an edit


def edit_text(original: str, old: Any, new: Any) -> str:
    """`original` with only the values that differ from `old` to `new` rewritten, in the
    original's style: an edit through the API shows as a diff of the lines it changed."""
    body_at = 1 if original.startswith("\ufeff") else 0
    try:
        spans: dict[tuple[Any, ...], Span] = {}
        _spans(original, body_at, (), spans)
        changes: list[tuple[tuple[Any, ...], Any]] = []
        _changes(old, new, (), changes)
        style = _style(original)
        text = original
        for path, value in sorted(changes, key=lambda c: spans[c[0]][0], reverse=True):
            start, end = spans[path]
            if value is _REMOVED:
                # Drop the item with the comma before it (after it, for the first one).
                index = path[-1]
                if index > 0:
                    start = spans[(*path[:-1], index - 1)][1]
                else:
                    end = spans[(*path[:-1], 1)][0]
                text = text[:start] + text[end:]
                continue
            line_start = text.rfind("\n", 0, start) + 1
            margin = re.match(r"[ \t]*", text[line_start:start]).group(0)  # type: ignore[union-attr]
            dumped = json.dumps(value, **style).replace("\n", "\n" + margin)
            text = text[:start] + _newlines(dumped, original) + text[end:]
        if same(loads(text, file="edited"), new):
            return text
    except (ValueError, IndexError, KeyError, RecursionError, InvalidModuleJson):
        pass
    return dumps_like(new, original)
