"""HubL's tokens, from Jinja2's lexer, and the helpers that walk them.

HubL is Jinjava, a Jinja dialect with the same delimiters, so Jinja2's lexer reads it: it
tracks string literals (a `%}` inside quotes does not end a tag, as Jinjava's
TokenScanner tracks quotes), skips `{# #}` comments and `{% raw %}` blocks and knows
whitespace control.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import Environment
from jinja2.exceptions import TemplateSyntaxError

_LEXER = Environment(autoescape=False).lexer
_SKIPPED = frozenset({"whitespace", "comment_begin", "comment", "comment_end", "raw_begin"})
_UNEXPECTED_CHAR = re.compile(r"unexpected char .* at (\d+)$")
_UNEXPECTED_BRACKET = re.compile(r"unexpected '(.)'")
MAX_REPAIRS = 200

Token = tuple[int, str, str]  # (line, kind, value) as Jinja's lexer yields them


@dataclass(frozen=True, slots=True)
class HublIssue:
    """One problem in module.html (one place of it)."""

    code: str
    line: int
    message: str
    path: str | None = None


# A tag or print, quotes tracked as Jinjava's TokenScanner does; and, inside one, a string
# literal (kept) or an operator of Jinjava's expression language Jinja does not have.
_SPAN = re.compile(
    r"""\{[{%](?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[^"'}%]|[}%](?!\}))*[}%]\}""", re.DOTALL
)
_JUEL = re.compile(r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|&&|\|\||!(?!=)|\?""")


def _as_spaces(html: str, ops: re.Pattern[str]) -> str:
    """What `ops` matches inside tags, outside string literals, as spaces (lines and
    offsets unchanged); `ops`' first group is a string literal, kept."""

    def span(match: re.Match[str]) -> str:
        return ops.sub(lambda op: op.group(1) or " " * len(op.group(0)), match.group(0))

    return _SPAN.sub(span, html)


def _juel_as_spaces(html: str) -> str:
    """`&&`, `||`, `!` and `?` inside tags as spaces."""
    if not any(op in html for op in ("&&", "||", "!", "?")):
        return html
    return _as_spaces(html, _JUEL)


def tokens(html: str, issues: list[HublIssue] | None = None) -> list[Token]:
    """The tokens of `html` (whitespace and comments left out). An operator of Jinjava's
    expression language Jinja does not know (`&&`, `||`, `!`, `?`) and any other
    character Jinja refuses is read as a space; a bracket that closes nothing is
    reported to `issues` and read as a space too. At most MAX_REPAIRS of those: past
    them the rest is not read, and that is reported."""
    text = _juel_as_spaces(html)
    out: list[Token] = []
    for _ in range(MAX_REPAIRS):
        out = []
        try:
            for line, kind, value in _LEXER.tokeniter(text, None):
                if kind not in _SKIPPED:
                    out.append((line, kind, value))
            return out
        except TemplateSyntaxError as exc:
            char = _UNEXPECTED_CHAR.search(exc.message or "")
            if char is not None:
                # Every such character in every tag at once: one more pass per character.
                pos = int(char.group(1))
                quoted = r"""("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')|""" + re.escape(text[pos])
                blanked = _as_spaces(text, re.compile(quoted))
                text = blanked if blanked[pos] == " " else text[:pos] + " " + text[pos + 1 :]
                continue
            bracket = _UNEXPECTED_BRACKET.match(exc.message or "")
            if issues is not None and "end of raw" in (exc.message or ""):
                # As in Jinjava: everything after an unclosed {% raw %} is text.
                message = "{% raw %} is never closed: add {% endraw %}"
                issues.append(HublIssue("unbalanced_tag", exc.lineno, message))
            elif issues is not None:
                issues.append(HublIssue("hubl_syntax", exc.lineno, f"HubL syntax: {exc.message}"))
            if bracket is None:
                return out
            text = _blank_on_line(text, exc.lineno, bracket.group(1))
    if issues is not None:
        last = out[-1][0] if out else 1
        issues.append(
            HublIssue(
                "hubl_syntax",
                last,
                f"HubL syntax: more than {MAX_REPAIRS} characters HubL does not know; "
                "the rest of the file was not read",
            )
        )
    return out


def _blank_on_line(text: str, line: int, char: str) -> str:
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    pos = text.find(char, start)
    return text if pos < 0 else text[:pos] + " " + text[pos + 1 :]


def statements(toks: list[Token]) -> Iterator[tuple[str, int, list[Token]]]:
    """("tag" | "print", line, the tokens inside the delimiters)."""
    i, n = 0, len(toks)
    while i < n:
        line, kind, _ = toks[i]
        if kind in ("block_begin", "variable_begin"):
            end = "block_end" if kind == "block_begin" else "variable_end"
            j = i + 1
            while j < n and toks[j][1] != end:
                j += 1
            yield ("tag" if kind == "block_begin" else "print"), line, toks[i + 1 : j]
            i = j + 1
        else:
            i += 1


def is_op(tok: Token | None, value: str, kind: str = "operator") -> bool:
    """Whether `tok` is the operator (or `kind`) `value`."""
    return tok is not None and tok[1] == kind and tok[2] == value


def split_top(toks: list[Token], sep: str = ",") -> list[list[Token]]:
    """Split at `sep` operators outside brackets."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in toks:
        if tok[1] == "operator" and tok[2] in "([{":
            depth += 1
        elif tok[1] == "operator" and tok[2] in ")]}":
            depth -= 1
        if depth == 0 and is_op(tok, sep):
            parts.append([])
        else:
            parts[-1].append(tok)
    return [p for p in parts if p]


def find_top(toks: list[Token], value: str, kind: str = "operator") -> int:
    """Index of the first `value` token outside brackets (an opening bracket itself
    counts as outside), -1 when there is none."""
    depth = 0
    for i, tok in enumerate(toks):
        if depth == 0 and tok[1] == kind and tok[2] == value:
            return i
        if tok[1] == "operator" and tok[2] in "([{":
            depth += 1
        elif tok[1] == "operator" and tok[2] in ")]}":
            depth -= 1
    return -1


def closing(toks: list[Token], i: int) -> int:
    """Index of the bracket closing the one at `i`."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j][1] == "operator" and toks[j][2] in "([{":
            depth += 1
        elif toks[j][1] == "operator" and toks[j][2] in ")]}":
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1
