"""A small reader of HubL (HubSpot's Jinja): block tags that must balance, and the
`module.X` paths a template reads, resolved against fields.json.

Not a HubL parser: it reads tags and expressions, follows `{% for item in module.items %}`
loops and `{% set x = module.group %}` aliases, and knows which tags have an end tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

# Tags that need an end tag (`endif`, `end_scope_css`…); the rest stand alone.
BLOCK_TAGS = frozenset(
    {
        "if",
        "for",
        "macro",
        "call",
        "filter",
        "unless",
        "block",
        "autoescape",
        "ifchanged",
        "scope_css",
        "require_css",
        "require_js",
        "require_head",
        "widget_block",
        "widget_attribute",
        "module_block",
        "module_attribute",
        "dnd_area",
        "dnd_section",
        "dnd_column",
        "dnd_row",
        "dnd_module",
    }
)
MIDDLE_TAGS = {"elif": {"if", "unless"}, "else": {"if", "unless", "for"}, "empty": {"for"}}
_TOKEN = re.compile(r"\{%-?\s*(?P<tag>.*?)\s*-?%\}|\{\{-?(?P<expr>.*?)-?\}\}", re.DOTALL)
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_CHAIN = re.compile(
    r"(?<![\w.\"'])(?P<root>[A-Za-z_]\w*)(?P<rest>(?:\s*\.\s*[A-Za-z_]\w*|\[\s*(?:'[^']*'|\"[^\"]*\"|\d+)\s*\])*)"
)
_SEGMENT = re.compile(r"\.\s*([A-Za-z_]\w*)|\[\s*(?:'([^']*)'|\"([^\"]*)\"|(\d+))\s*\]")
_FOR = re.compile(r"^for\s+(?P<vars>[\w\s,]+?)\s+in\s+(?P<expr>.+)$", re.DOTALL)
_SET = re.compile(r"^set\s+(?P<name>[A-Za-z_]\w*)\s*=\s*(?P<expr>.+)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class HublIssue:
    """One problem in module.html."""

    code: str
    line: int
    message: str
    path: str | None = None


@dataclass
class _Node:
    """A field of fields.json (or the module itself), as a path of names."""

    path: tuple[str, ...]
    field: dict[str, Any] | None  # None: the module root

    @property
    def is_group(self) -> bool:
        return self.field is None or str(self.field.get("type", "")).lower() == "group"


@dataclass
class HublReport:
    """What module.html does: its issues and the field paths it reads."""

    issues: list[HublIssue] = field(default_factory=list)
    used: set[tuple[str, ...]] = field(default_factory=set)
    whole: set[tuple[str, ...]] = field(default_factory=set)  # groups read as a whole


def _blank_comments(html: str) -> str:
    """Comments replaced by spaces, newlines kept, so offsets and lines stay true."""
    return _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), html)


def _line(html: str, offset: int) -> int:
    return html.count("\n", 0, offset) + 1


def _segments(rest: str) -> list[str]:
    out = []
    for match in _SEGMENT.finditer(rest):
        name = match.group(1) or match.group(2) or match.group(3)
        out.append(name if name is not None else f"[{match.group(4)}]")
    return out


class _Reader:
    def __init__(self, html: str, fields: list[Any] | None) -> None:
        self.html = _blank_comments(html)
        self.fields = fields
        self.report = HublReport()
        self.stack: list[tuple[str, int, dict[str, _Node]]] = []
        self.aliases: dict[str, _Node] = {}

    # --- names ----------------------------------------------------------------------

    def _bound(self, name: str) -> _Node | None:
        for _, _, names in reversed(self.stack):
            if name in names:
                return names[name]
        if name in self.aliases:
            return self.aliases[name]
        if name == "module" and self.fields is not None:
            return _Node((), None)
        return None

    def _children(self, node: _Node) -> list[dict[str, Any]]:
        items = self.fields if node.field is None else node.field.get("children")
        return [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []

    def _resolve(self, node: _Node, segments: list[str], line: int, text: str) -> _Node:
        """Follow segments through groups; report names that are not fields."""
        for segment in segments:
            if segment.startswith("["):
                continue  # an index into a repeater: same field, one item
            if not node.is_group:
                break  # a value's own properties (.src, .url.href, .css): not fields
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

    def _reads(self, expr: str, offset: int, *, whole: bool = True) -> list[_Node]:
        """The fields an expression reads; a group read as a whole (printed, passed on)
        counts as reading all of it, unless it is looped over or aliased."""
        nodes = []
        for match in _CHAIN.finditer(expr):
            root = self._bound(match.group("root"))
            if root is None:
                continue
            text = re.sub(r"\s+", "", match.group(0))
            segments = _segments(match.group("rest"))
            called = bool(segments) and expr[match.end() :].lstrip().startswith("(")
            if called:
                segments = segments[:-1]  # a method call (.items(), .get()): not a field
            node = self._resolve(root, segments, _line(self.html, offset), text)
            nodes.append(node)
            if (whole or called) and node.is_group:
                self.report.whole.add(node.path)
        return nodes

    # --- tags -----------------------------------------------------------------------

    def _tag(self, body: str, offset: int) -> None:
        name = body.split(None, 1)[0] if body else ""
        line = _line(self.html, offset)
        if name.startswith("end") and name != "end":
            self._close(name, line)
            return
        if name in MIDDLE_TAGS:
            if not self.stack or self.stack[-1][0] not in MIDDLE_TAGS[name]:
                self.report.issues.append(
                    HublIssue("unbalanced_tag", line, f"{{% {name} %}} outside an if or for block")
                )
            self._reads(body[len(name) :], offset)
            return
        if name == "for":
            match = _FOR.match(body)
            names: dict[str, _Node] = {}
            if match:
                expr = match.group("expr").split("|", 1)[0].strip()
                iterated = self._reads(match.group("expr"), offset, whole=False)
                loop_vars = [v.strip() for v in match.group("vars").split(",")]
                if iterated and len(loop_vars) == 1 and _CHAIN.fullmatch(expr):
                    names[loop_vars[0]] = iterated[0]
            self.stack.append(("for", line, names))
            return
        if name == "set":
            match = _SET.match(body)
            if match is None:
                self.stack.append(("set", line, {}))  # {% set x %}…{% endset %}
                return
            expr = match.group("expr").strip()
            nodes = self._reads(expr, offset, whole=False)
            whole_chain = _CHAIN.fullmatch(expr)
            if nodes and whole_chain:
                self.aliases[match.group("name")] = nodes[0]
            else:
                self.aliases.pop(match.group("name"), None)
            return
        self._reads(body[len(name) :], offset)
        if name in BLOCK_TAGS:
            self.stack.append((name, line, {}))

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
        if self.stack[-1][0] == opener:
            self.stack.pop()
            return
        top, top_line, _ = self.stack[-1]
        self.report.issues.append(
            HublIssue(
                "unbalanced_tag",
                line,
                f"{{% {name} %}} closes {{% {top} %}} opened at line {top_line}; close that first",
            )
        )
        if any(tag == opener for tag, _, _ in self.stack):
            while self.stack and self.stack[-1][0] != opener:
                self.stack.pop()
            self.stack.pop()

    def read(self) -> HublReport:
        text = self.html
        position = 0
        while True:
            match = _TOKEN.search(text, position)
            if match is None:
                break
            position = match.end()
            if match.group("tag") is not None:
                body = match.group("tag").strip()
                if body == "raw":  # nothing is HubL until {% endraw %}
                    end = re.compile(r"\{%-?\s*endraw\s*-?%\}").search(text, position)
                    if end is None:
                        self.report.issues.append(
                            HublIssue(
                                "unbalanced_tag",
                                _line(text, match.start()),
                                "{% raw %} is never closed: add {% endraw %}",
                            )
                        )
                        break
                    position = end.end()
                    continue
                self._tag(body, match.start())
            else:
                self._reads(match.group("expr"), match.start())
        for tag, line, _ in self.stack:
            closer = "end_" + tag if "_" in tag else "end" + tag
            self.report.issues.append(
                HublIssue(
                    "unbalanced_tag",
                    line,
                    f"{{% {tag} %}} is never closed: add {{% {closer} %}}",
                )
            )
        return self.report


def read_hubl(html: str, fields: list[Any] | None) -> HublReport:
    """Issues of module.html and the field paths it reads; with `fields` None (a
    fields.js module), field references are not checked."""
    return _Reader(html, fields).read()
