"""Section detection of an HTML design, with the standard library's HTML parser.

A design page is read as its top-level landmarks: `header`, `nav`, `section`, `article`,
`aside`, `footer` (and the children of `main`), or any element whose class or id names
a hero. Each becomes a section with its headings, links, images and amount of text; its
kind is `header`, `hero`, `footer`, or what its class, id or first heading names
(features, pricing, testimonials…), else `content`. This is the reference worker's one
real phase; the model phases after it are stand-ins.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any

LANDMARKS = frozenset({"header", "nav", "section", "article", "aside", "footer"})
VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
SKIPPED = frozenset({"script", "style", "template", "noscript"})
KINDS = (
    ("hero", ("hero", "banner", "jumbotron", "masthead")),
    ("features", ("feature", "benefit", "services")),
    ("pricing", ("pricing", "price", "plans")),
    ("testimonials", ("testimonial", "review", "quote")),
    ("faq", ("faq", "questions")),
    ("cta", ("cta", "signup", "call-to-action", "get-started")),
    ("contact", ("contact", "newsletter", "subscribe")),
    ("gallery", ("gallery", "portfolio", "showcase")),
    ("team", ("team", "people", "about")),
    ("stats", ("stats", "numbers", "metrics")),
)
_WORDS = re.compile(r"[a-z]+(?:-[a-z]+)*")


@dataclass
class Section:
    """One landmark of the page and what it holds."""

    kind: str
    tag: str
    element_id: str | None
    classes: list[str]
    headings: list[str] = field(default_factory=list)
    links: int = 0
    images: int = 0
    text_chars: int = 0

    def as_payload(self) -> dict[str, Any]:
        """The section as a JSON-ready dict (a phase payload)."""
        return asdict(self)


class _Detector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.stack: list[tuple[str, Section | None]] = []  # open tags, and the section each opened
        self.current: Section | None = None
        self.heading: list[str] | None = None
        self.skip = 0

    def _opens_section(self, tag: str, attrs: dict[str, str]) -> bool:
        if self.current is not None:
            return False
        if tag in LANDMARKS:
            return True
        names = f"{attrs.get('class', '')} {attrs.get('id', '')}".lower()
        return tag in ("div", "main") and any(w in names for w in KINDS[0][1])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in SKIPPED:
            self.skip += 1
        opened: Section | None = None
        if self._opens_section(tag, values):
            opened = Section(
                kind="",
                tag=tag,
                element_id=values.get("id") or None,
                classes=values.get("class", "").split(),
            )
            self.sections.append(opened)
            self.current = opened
        if self.current is not None:
            if tag == "a":
                self.current.links += 1
            elif tag in ("img", "picture", "svg", "video"):
                self.current.images += 1
            elif tag in HEADINGS:
                self.heading = []
        if tag not in VOID:
            self.stack.append((tag, opened))

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED and self.skip:
            self.skip -= 1
        if not any(open_tag == tag for open_tag, _ in self.stack):
            return  # a stray end tag: ignored, as browsers do
        while self.stack:
            open_tag, opened = self.stack.pop()
            if open_tag in HEADINGS and self.heading is not None and self.current is not None:
                text = " ".join("".join(self.heading).split())
                if text:
                    self.current.headings.append(text)
                self.heading = None
            if opened is not None:
                self.current = None
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.skip or self.current is None:
            return
        if self.heading is not None:
            self.heading.append(data)
        self.current.text_chars += len(data.strip())


def _kind(section: Section, index: int, count: int, after_header: bool) -> str:
    if section.tag in ("header", "nav") and index <= 1:
        return "header"
    if section.tag == "footer" and index == count - 1:
        return "footer"
    names = " ".join([*section.classes, section.element_id or ""]).lower()
    words = " ".join([names, *(h.lower() for h in section.headings[:1])])
    for kind, cues in KINDS:
        if any(cue in words for cue in cues):
            return kind
    if after_header or index == 0:
        return "hero"
    return "content"


def detect_sections(html: str) -> list[Section]:
    """The page's sections, in document order, each with its kind."""
    detector = _Detector()
    detector.feed(html)
    detector.close()
    found = detector.sections
    hero_taken = False
    for index, section in enumerate(found):
        after_header = not hero_taken and index > 0 and found[index - 1].kind == "header"
        section.kind = _kind(section, index, len(found), after_header)
        hero_taken = hero_taken or section.kind == "hero"
    return found
