"""A reader of HubL (HubSpot's Jinja): block tags that must balance, and the `module.X`
paths a template reads, resolved against fields.json.

Tokens come from Jinja2's own lexer (HubL is Jinjava, a Jinja dialect with the same
delimiters): it tracks string literals (a `%}` inside quotes does not end a tag), skips
`{# #}` comments and `{% raw %}` blocks and knows whitespace control. On top of it, as
Jinjava's TagToken does, a tag's name is its first identifier (`{% require_js, … %}` is
`require_js`), and a table says which tags are blocks. Names are followed through
scopes: `for` loops, macros (their arguments shadow outer names), `with` and `call`
blocks each open one, and `set` binds in the innermost (an assignment inside a macro
does not touch the alias outside).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from templator.hubspot.hubl_tags import BLOCK_TAGS, MIDDLE_TAGS, SCOPE_TAGS, SHAPE_FILTERS
from templator.hubspot.hubl_tokens import (
    HublIssue,
    Token,
    closing,
    find_top,
    is_op,
    split_top,
    statements,
    tokens,
)

__all__ = ["HublIssue", "HublReport", "read_hubl"]


@dataclass(frozen=True, slots=True)
class _Node:
    """A field of fields.json (or the module itself), as a path of names."""

    path: tuple[str, ...]
    field: dict[str, Any] | None  # None: the module root
    opaque: bool = False  # a value HubSpot provides (module.data_query): not checked

    @property
    def is_group(self) -> bool:
        if self.opaque:
            return False
        return self.field is None or str(self.field.get("type", "")).lower() == "group"


@dataclass
class HublReport:
    """What module.html does: its issues and the field paths it reads."""

    issues: list[HublIssue] = field(default_factory=list)
    used: set[tuple[str, ...]] = field(default_factory=set)
    whole: set[tuple[str, ...]] = field(default_factory=set)  # groups read as a whole


Frame = dict[str, _Node | None]  # a name bound to a field, or None: a name that is not one


@dataclass
class _Open:
    """A block tag waiting for its end tag."""

    tag: str
    line: int
    frame: Frame | None = None
    target: list[str] = field(default_factory=list)  # {% set x %}…{% endset %}


class _Reader:
    def __init__(self, html: str, fields: list[Any] | None, provided: frozenset[str]) -> None:
        self.html = html
        self.fields = fields
        self.provided = provided
        self.report = HublReport()
        self.stack: list[_Open] = []
        self.frames: list[Frame] = [{}]

    # --- names ----------------------------------------------------------------------

    def _bound(self, name: str) -> _Node | None:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        if name == "module" and self.fields is not None:
            return _Node((), None)
        return None

    def _bind(self, name: str, node: _Node | None) -> None:
        self.frames[-1][name] = node

    def _children(self, node: _Node) -> list[dict[str, Any]]:
        items = self.fields if node.field is None else node.field.get("children")
        return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []

    def _resolve(self, node: _Node, segments: list[tuple[str, int]], text: str) -> _Node:
        """Follow segments through groups; report names that are not fields."""
        for segment, line in segments:
            if segment.startswith("["):
                continue  # an index into a repeater: same field, one item
            if not node.is_group:
                break  # a value's own properties (.src, .url.href, .css): not fields
            if node.field is None and segment in self.provided:
                return _Node((segment,), {}, opaque=True)
            children = self._children(node)
            found = next((c for c in children if c.get("name") == segment), None)
            if found is None:
                names = [c["name"] for c in children if isinstance(c.get("name"), str)]
                where = f"group {'.'.join(node.path)!r}" if node.path else "fields.json"
                close = get_close_matches(segment, names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.report.issues.append(
                    HublIssue(
                        "unknown_field",
                        line,
                        f"{text}: there is no field {segment!r} in {where}{hint}",
                        path=".".join((*node.path, segment)),
                    )
                )
                return _Node((*node.path, segment), {"type": "unknown"})
            node = _Node((*node.path, segment), found)
            self.report.used.add(node.path)
        return node

    def _chain(self, toks: list[Token], i: int) -> tuple[list[tuple[str, int]], int]:
        """The `.name`, `['key']` and `[expr]` segments after the name at `i`, and the
        index after them; an `[expr]` index is read on its own."""
        segments: list[tuple[str, int]] = []
        j, n = i + 1, len(toks)
        while j < n:
            if is_op(toks[j], ".") and j + 1 < n and toks[j + 1][1] == "name":
                segments.append((toks[j + 1][2], toks[j + 1][0]))
                j += 2
            elif is_op(toks[j], "["):
                end = closing(toks, j)
                inner = toks[j + 1 : end]
                if len(inner) == 1 and inner[0][1] == "string":
                    segments.append((inner[0][2][1:-1], inner[0][0]))
                else:
                    self._reads(inner)
                    segments.append(("[i]", toks[j][0]))
                j = end + 1
            else:
                break
        return segments, j

    def _reads(self, toks: list[Token], *, whole: bool = True) -> list[tuple[_Node, int]]:
        """The fields an expression reads, with the index after each chain; a group read
        as a whole (printed, passed on, called) counts as reading all of it, unless it
        is looped over or aliased (`whole=False`)."""
        out: list[tuple[_Node, int]] = []
        i, n = 0, len(toks)
        while i < n:
            line, kind, value = toks[i]
            prev = toks[i - 1] if i > 0 else None
            if kind == "string" and ("{{" in value or "{%" in value):
                self._in_string(value[1:-1], line)
            if (
                kind != "name"
                or is_op(prev, ".")
                or is_op(prev, "|")
                or is_op(prev, "is", "name")
                or (i + 1 < n and is_op(toks[i + 1], "="))  # a keyword argument's name
            ):
                i += 1
                continue
            segments, j = self._chain(toks, i)
            root = self._bound(value)
            called = j < n and is_op(toks[j], "(")
            if root is None or (called and not segments):
                i = j if j > i + 1 else i + 1
                continue
            if called:
                segments = segments[:-1]  # a method call (.items(), .append()): not a field
            text = value + "".join(s if s.startswith("[") else f".{s}" for s, _ in segments)
            node = self._resolve(root, segments, text)
            out.append((node, j))
            if (whole or called) and node.is_group:
                self.report.whole.add(node.path)
            i = j
        return out

    def _in_string(self, text: str, line: int) -> None:
        """HubSpot renders `{{ … }}` inside a tag's string argument (`value="{{
        module.title }}"`): its reads count; tags in a string are text, not blocks."""
        for _, _, toks in statements(tokens(text)):
            self._reads([(line + at - 1, k, v) for at, k, v in toks])

    def _alias(self, toks: list[Token]) -> _Node | None:
        """The field `toks` stands for when it is one chain (through filters that keep
        its shape: sort, selectattr…), else None; the fields it reads are recorded."""
        reads = self._reads(toks, whole=False)
        if len(reads) != 1 or not toks or toks[0][1] != "name":
            return None
        node, end = reads[0]
        rest = toks[end:]
        while rest and is_op(rest[0], "|") and len(rest) > 1 and rest[1][2] in SHAPE_FILTERS:
            rest = rest[2:]
            if rest and is_op(rest[0], "("):
                rest = rest[closing(rest, 0) + 1 :]
        return node if not rest else None

    # --- tags -----------------------------------------------------------------------

    def _tag(self, line: int, toks: list[Token]) -> None:
        if not toks or toks[0][1] != "name":
            return
        name = toks[0][2].lower()
        helpers = toks[1:]
        if name.startswith("end") and name != "end":
            self._close(name, line)
            return
        if name in MIDDLE_TAGS:
            if not self.stack or self.stack[-1].tag not in MIDDLE_TAGS[name]:
                self.report.issues.append(
                    HublIssue("unbalanced_tag", line, f"{{% {name} %}} outside an if or for block")
                )
            self._reads(helpers)
            return
        handler = {
            "for": self._for,
            "set": self._set,
            "macro": self._macro,
            "with": self._with,
        }.get(name)
        if handler is not None:
            handler(line, helpers)
            return
        self._reads(helpers)
        if name in BLOCK_TAGS:
            self.stack.append(_Open(name, line, {} if name in SCOPE_TAGS else None))
            if name in SCOPE_TAGS:
                self.frames.append({})

    def _open_scope(self, tag: str, line: int, frame: Frame) -> None:
        self.stack.append(_Open(tag, line, frame))
        self.frames.append(frame)

    def _for(self, line: int, helpers: list[Token]) -> None:
        at = find_top(helpers, "in", "name")
        frame: Frame = {"loop": None}
        if at < 0:
            self._reads(helpers)
            self._open_scope("for", line, frame)
            return
        targets = [p[0][2] for p in split_top(helpers[:at]) if p and p[0][1] == "name"]
        rest = helpers[at + 1 :]
        cut = min(
            (
                k
                for k in (find_top(rest, "if", "name"), find_top(rest, "recursive", "name"))
                if k >= 0
            ),
            default=len(rest),
        )
        iterated = self._alias(rest[:cut])
        for target in targets:
            frame[target] = iterated if len(targets) == 1 else None
        self._open_scope("for", line, frame)
        self._reads(rest[cut:])

    def _set(self, line: int, helpers: list[Token]) -> None:
        eq = find_top(helpers, "=")
        if eq < 0:  # {% set x %}…{% endset %}
            names = [t[2] for t in helpers if t[1] == "name"]
            self.stack.append(_Open("set", line, None, names))
            return
        target, expr = helpers[:eq], helpers[eq + 1 :]
        names = [p[0][2] for p in split_top(target) if len(p) == 1 and p[0][1] == "name"]
        if len(target) == 1 and names:
            self._bind(names[0], self._alias(expr))
            return
        self._reads(expr)
        for name in names:  # {% set a, b = … %}; {% set a.b = … %} binds nothing
            self._bind(name, None)

    def _macro(self, line: int, helpers: list[Token]) -> None:
        frame: Frame = {"caller": None, "varargs": None, "kwargs": None}
        if helpers and helpers[0][1] == "name":
            self._bind(helpers[0][2], None)
        start = find_top(helpers, "(")
        if start >= 0:
            for arg in split_top(helpers[start + 1 : closing(helpers, start)]):
                if arg[0][1] == "name":
                    frame[arg[0][2]] = None
                if len(arg) > 2 and is_op(arg[1], "="):
                    self._reads(arg[2:])
        self._open_scope("macro", line, frame)

    def _with(self, line: int, helpers: list[Token]) -> None:
        frame: Frame = {}
        for part in split_top(helpers):
            if len(part) > 2 and part[0][1] == "name" and is_op(part[1], "="):
                frame[part[0][2]] = self._alias(part[2:])
            else:
                self._reads(part)
        self._open_scope("with", line, frame)

    def _close(self, name: str, line: int) -> None:
        opener = name[3:].lstrip("_")
        if opener not in BLOCK_TAGS and opener != "set":
            return  # an end tag of a tag we do not know: leave it to HubSpot
        if not self.stack:
            self.report.issues.append(
                HublIssue(
                    "unbalanced_tag", line, f"{{% {name} %}} closes nothing: no {{% {opener} %}}"
                )
            )
            return
        if self.stack[-1].tag == opener:
            self._pop()
            return
        top = self.stack[-1]
        self.report.issues.append(
            HublIssue(
                "unbalanced_tag",
                line,
                f"{{% {name} %}} closes {{% {top.tag} %}} opened at line {top.line}; "
                "close that first",
            )
        )
        if any(o.tag == opener for o in self.stack):
            while self.stack and self.stack[-1].tag != opener:
                self._pop()
            self._pop()

    def _pop(self) -> None:
        done = self.stack.pop()
        if done.frame is not None and len(self.frames) > 1:
            self.frames.pop()
        for target in done.target:
            self._bind(target, None)

    def read(self) -> HublReport:
        for kind, line, toks in statements(tokens(self.html, self.report.issues)):
            if kind == "tag":
                self._tag(line, toks)
            else:
                self._reads(toks)
        for still in self.stack:
            closer = "end_" + still.tag if "_" in still.tag else "end" + still.tag
            self.report.issues.append(
                HublIssue(
                    "unbalanced_tag",
                    still.line,
                    f"{{% {still.tag} %}} is never closed: add {{% {closer} %}}",
                )
            )
        return self.report


def read_hubl(
    html: str, fields: list[Any] | None, *, provided: frozenset[str] = frozenset()
) -> HublReport:
    """Issues of module.html and the field paths it reads; with `fields` None (a
    fields.js module), field references are not checked. `provided` names values HubSpot
    puts beside the fields (`data_query` for a module bound to a GraphQL query)."""
    return _Reader(html, fields, provided).read()
