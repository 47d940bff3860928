"""`module check`: what HubSpot would refuse or render wrong, found before upload.

Each finding is one distinct problem with every place it occurs (`lines`), and says
what it would do on HubSpot (`impact`): `upload` (HubSpot refuses the module: invalid
JSON, a configuration it refuses, duplicate field names, unbalanced tags, broken HubL
syntax), `render` (it uploads but renders wrong: HubL reading `module.X` fields that
fields.json does not have) — both errors — or `style` (fields never used, image fields
without a default alt text, keys or field types we do not know) — warnings. The score
is `max(0, 1 - 0.2 × errors - 0.05 × warnings)`, rounded to two decimals.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from templator.hubspot import jsontext
from templator.hubspot.config import ConfigWarning, validate_hubspot_config
from templator.hubspot.errors import InvalidHubSpotConfig, InvalidModuleArchive
from templator.hubspot.hubl import read_hubl
from templator.hubspot.package import ModuleContent, _collect, _from_files, _relative_folders

ERROR_WEIGHT = 0.2
WARNING_WEIGHT = 0.05
FIELDS_JS = ("fields.js", "fields.mjs", "fields.cjs")


Impact = Literal["upload", "render", "style"]
IMPACT = {
    "invalid_module_json": "upload",
    "invalid_hubspot_config": "upload",
    "invalid_module_archive": "upload",
    "module_too_large": "upload",
    "duplicate_field": "upload",
    "unbalanced_tag": "upload",
    "hubl_syntax": "upload",
    "unknown_field": "render",
}


IMPACT_WORDS = {"upload": "would not upload", "render": "would render wrong", "style": "style"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to fix (error) or look at (warning), with every line it occurs on."""

    severity: Literal["error", "warning"]
    code: str
    file: str
    line: int | None
    path: str | None
    message: str
    lines: tuple[int, ...] = ()
    impact: Impact = "style"

    def __str__(self) -> str:
        shown = ",".join(str(n) for n in self.lines) if len(self.lines) > 1 else self.line
        where = f"{self.file}:{shown}" if shown else self.file
        return f"{self.severity} ({IMPACT_WORDS[self.impact]}): {where}: {self.message}"


def _finding(code: str, file: str, line: int | None, path: str | None, message: str) -> Finding:
    impact: Impact = IMPACT.get(code, "style")  # type: ignore[assignment]
    severity: Literal["error", "warning"] = "warning" if impact == "style" else "error"
    return Finding(severity, code, file, line, path, message, (line,) if line else (), impact)


def _grouped(findings: list[Finding]) -> list[Finding]:
    """One finding per distinct problem: the same code on the same path (an unknown
    field read twelve times) is one finding with all its lines."""
    out: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        key = (f.code, f.file, f.path or f"{f.message}@{f.line}")
        if key in out:
            first = out[key]
            lines = tuple(sorted({*first.lines, *f.lines}))
            out[key] = Finding(
                first.severity,
                first.code,
                first.file,
                lines[0] if lines else None,
                first.path,
                first.message,
                lines,
                first.impact,
            )
        else:
            out[key] = f
    return list(out.values())


@dataclass
class CheckReport:
    """The findings of one module."""

    module: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """How many errors."""
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        """How many warnings."""
        return sum(f.severity == "warning" for f in self.findings)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return self.errors == 0

    @property
    def score(self) -> float:
        """1 for a clean module, less for each error and warning, never below 0."""
        return max(0.0, round(1 - ERROR_WEIGHT * self.errors - WARNING_WEIGHT * self.warnings, 2))

    def sort(self) -> None:
        """Errors first, then by file and line."""
        self.findings.sort(key=lambda f: (f.severity != "error", f.file, f.line or 0))

    def as_json(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "module": self.module,
            "ok": self.ok,
            "score": self.score,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [asdict(f) for f in self.findings],
        }


def _name_line(text: str | None, name: str, nth: int) -> int | None:
    if not text:
        return None
    pattern = re.compile(r'"name"\s*:\s*' + re.escape(json.dumps(name, ensure_ascii=False)))
    matches = list(pattern.finditer(text))
    if not matches:
        return None
    return text.count("\n", 0, matches[min(nth, len(matches) - 1)].start()) + 1


def _walk_fields(
    fields: Any, prefix: str = "fields", names: tuple[str, ...] = ()
) -> list[tuple[str, tuple[str, ...], dict[str, Any], list[Any]]]:
    """(path by names `fields > hero > title`, name path, field, its sibling list) of
    every field, in document order."""
    out: list[tuple[str, tuple[str, ...], dict[str, Any], list[Any]]] = []
    if not isinstance(fields, list):
        return out
    for i, item in enumerate(fields):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        path = (*names, name if isinstance(name, str) else f"[{i}]")
        where = f"{prefix} > {path[-1]}"
        out.append((where, path, item, fields))
        out += _walk_fields(item.get("children"), where, path)
    return out


def _lint_fields(fields: Any, text: str | None) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, int] = {}
    for json_path, names, item, siblings in _walk_fields(fields):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        nth = seen.get(name, 0)
        seen[name] = nth + 1
        line = _name_line(text, name, nth)
        same = [s for s in siblings if isinstance(s, dict) and s.get("name") == name]
        if len(same) > 1 and same[0] is not item:
            findings.append(
                _finding(
                    "duplicate_field",
                    "fields.json",
                    line,
                    json_path,
                    f"a second field is named {name!r} at the same level; rename one "
                    "(HubL can reach only one of them)",
                )
            )
        if str(item.get("type", "")).lower() == "image":
            default = item.get("default")
            values = default if item.get("occurrence") and isinstance(default, list) else [default]
            if not values or any(
                not isinstance(v, dict) or not str(v.get("alt") or "").strip() for v in values
            ):
                findings.append(
                    _finding(
                        "image_alt_missing",
                        "fields.json",
                        line,
                        json_path,
                        f"image field {'.'.join(names)!r} has no default alt text; set "
                        '"default": {"alt": "..."} so the image is described until an '
                        "editor does",
                    )
                )
    return findings


def _provided(meta: Any) -> frozenset[str]:
    """Values HubSpot puts beside the fields: `data_query` when meta.json binds a
    GraphQL query (`data_query_path`)."""
    bound = isinstance(meta, dict) and isinstance(meta.get("data_query_path"), str)
    return frozenset({"data_query"}) if bound else frozenset()


def _lint_hubl(
    html: str,
    fields: Any,
    text: str | None,
    *,
    meta: Any = None,
    others: dict[str, str] | None = None,
) -> list[Finding]:
    """module.html's findings; `others` are the module's other HubL-reading files (a
    bound `.graphql` query reads module fields through `{{ module.x }}`)."""
    checked = fields if isinstance(fields, list) else None
    report = read_hubl(html, checked, provided=_provided(meta))
    findings = [
        _finding(issue.code, "module.html", issue.line, issue.path, issue.message)
        for issue in report.issues
    ]
    for other, body in sorted((others or {}).items()):
        extra = read_hubl(body, checked, provided=_provided(meta))
        report.used |= extra.used
        report.whole |= extra.whole
        findings += [
            _finding(i.code, other, i.line, i.path, i.message)
            for i in extra.issues
            if i.code == "unknown_field"
        ]
    if not isinstance(fields, list):
        return findings
    if _unseen_query(meta, others):
        return findings  # the bound query lives outside the module: its reads are unknown
    used = report.used

    def read(names: tuple[str, ...]) -> bool:
        return names in used or any(names[: len(w)] == w for w in report.whole)

    seen: dict[str, int] = {}
    skipped: list[tuple[str, ...]] = []
    for json_path, names, item, _ in _walk_fields(fields):
        name = item.get("name")
        nth = seen.get(str(name), 0)
        seen[str(name)] = nth + 1
        if any(names[: len(s)] == s for s in skipped):
            continue  # inside a group already reported as unused
        if not read(names):
            skipped.append(names)
            what = "group" if str(item.get("type", "")).lower() == "group" else "field"
            findings.append(
                _finding(
                    "unused_field",
                    "fields.json",
                    _name_line(text, str(name), nth),
                    json_path,
                    f"{what} {'.'.join(names)!r} is never used in module.html; use it or remove it",
                )
            )
    return findings


def _unseen_query(meta: Any, others: dict[str, str] | None) -> bool:
    path = meta.get("data_query_path") if isinstance(meta, dict) else None
    if not isinstance(path, str):
        return False
    stem = PurePosixPath(path).name.removesuffix(".graphql")
    return not any(PurePosixPath(n).name.removesuffix(".graphql") == stem for n in others or {})


def _graphql(files: Any) -> dict[str, str]:
    """The module's `.graphql` files, by path."""
    if not isinstance(files, dict):
        return {}
    return {
        name: entry["text"]
        for name, entry in files.items()
        if name.endswith(".graphql") and isinstance(entry, dict) and "text" in entry
    }


def _config_findings(warnings: list[ConfigWarning]) -> list[Finding]:
    return [
        _finding(
            "unknown_type" if "field type" in w.message else "unknown_key",
            "meta.json" if w.path.startswith("meta") else "fields.json",
            None,
            w.path,
            f"{w.path}: {w.message}",
        )
        for w in warnings
    ]


def _fields_for_hubl(config: dict[str, Any], files: set[str]) -> Any:
    source = config.get("source")
    has_json = not isinstance(source, dict) or "fields.json" in source or config.get("fields")
    if not has_json and files & set(FIELDS_JS):
        return None  # fields come from fields.js at upload: references cannot be checked
    return config.get("fields")


def check_module(module: ModuleContent) -> CheckReport:
    """Check a module that reads (a template, or a folder that imports)."""
    report = CheckReport(module.folder)
    try:
        warnings = validate_hubspot_config(module.config)
    except (InvalidHubSpotConfig, InvalidModuleArchive) as exc:
        report.findings += _errors_of(exc)
        warnings = []
    report.findings += _config_findings(warnings)
    source = module.config.get("source")
    text = source.get("fields.json") if isinstance(source, dict) else None
    fields = module.config.get("fields")
    report.findings += _lint_fields(fields, text)
    files = set((module.config.get("files") or {}).keys())
    report.findings += _lint_hubl(
        module.html,
        _fields_for_hubl(module.config, files),
        text,
        meta=module.config.get("meta"),
        others=_graphql(module.config.get("files")),
    )
    report.findings = _grouped(report.findings)
    report.sort()
    return report


def _errors_of(exc: InvalidHubSpotConfig | InvalidModuleArchive) -> list[Finding]:
    """One finding per problem: a config refused for six reasons gives six."""
    problems = getattr(exc, "problems", ())
    if problems:
        return [
            _finding(
                exc.code,
                "meta.json" if path.startswith("meta") else "fields.json",
                None,
                path,
                f"{path}: {message}",
            )
            for path, message in problems
        ]
    message = exc.message
    file = "fields.json" if "fields" in (exc.field or "") else "meta.json"
    for candidate in ("meta.json", "fields.json", "module.html", "module.css", "module.js"):
        if candidate in message.split(":", 1)[0]:
            file = candidate
    line_match = re.search(r"line (\d+)", message)
    return [
        _finding(
            exc.code, file, int(line_match.group(1)) if line_match else None, exc.field, message
        )
    ]


def _check_raw(folder: str, files: dict[str, bytes]) -> CheckReport:
    """Check a folder as read; when it does not import, still lint what can be read."""
    try:
        return check_module(_from_files(folder, files))
    except (InvalidHubSpotConfig, InvalidModuleArchive) as exc:
        report = CheckReport(folder or "module", _errors_of(exc))
    texts = {
        n: d.decode("utf-8", "replace") for n, d in files.items() if n.endswith((".json", ".html"))
    }
    fields: Any = None
    with contextlib.suppress(InvalidModuleArchive):
        fields = jsontext.loads(texts.get("fields.json", "[]"), file="fields.json")
    meta: Any = None
    with contextlib.suppress(InvalidModuleArchive):
        meta = jsontext.loads(texts.get("meta.json", "{}"), file="meta.json")
    graphql = {n: d.decode("utf-8", "replace") for n, d in files.items() if n.endswith(".graphql")}
    report.findings += _lint_fields(fields, texts.get("fields.json"))
    if "module.html" in texts:
        report.findings += _lint_hubl(
            texts["module.html"], fields, texts.get("fields.json"), meta=meta, others=graphql
        )
    if any(f.code == "duplicate_field" for f in report.findings):
        # The lint lists every duplicate; the config's own refusal names only the first.
        report.findings = [f for f in report.findings if "two sibling fields" not in f.message]
    report.findings = _grouped(report.findings)
    return report


def check_path(source: Path | bytes) -> list[CheckReport]:
    """Check every module of a zip, a `.module` folder or a folder of them."""
    found = _collect(source)
    if not found:
        raise InvalidModuleArchive(
            "no module found: expected NAME.module folders holding meta.json and module.html",
            field="file",
        )
    relative = _relative_folders([f for f in found if f])
    reports = [_check_raw(relative.get(f, f), files) for f, files in sorted(found.items())]
    for report in reports:
        report.sort()
    return reports
