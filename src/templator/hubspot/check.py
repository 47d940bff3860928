"""`module check`: what HubSpot would refuse or render wrong, found before upload.

Errors: invalid JSON (file and line), a configuration HubSpot refuses, duplicate field
names, HubL reading `module.X` fields that fields.json does not have (inside groups and
repeater loops too), unbalanced block tags. Warnings: fields never used, image fields
without a default alt text, keys we do not know. The score is
`max(0, 1 - 0.2 × errors - 0.05 × warnings)`, rounded to two decimals.
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
from templator.hubspot.package import ModuleContent, _collect, _from_files

ERROR_WEIGHT = 0.2
WARNING_WEIGHT = 0.05
FIELDS_JS = ("fields.js", "fields.mjs", "fields.cjs")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing to fix (error) or look at (warning)."""

    severity: Literal["error", "warning"]
    code: str
    file: str
    line: int | None
    path: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.severity}: {where}: {self.message}"


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
    """(JSON path, name path, field, its sibling list) of every field, in document order."""
    out: list[tuple[str, tuple[str, ...], dict[str, Any], list[Any]]] = []
    if not isinstance(fields, list):
        return out
    for i, item in enumerate(fields):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        path = (*names, name if isinstance(name, str) else f"[{i}]")
        out.append((f"{prefix}[{i}]", path, item, fields))
        out += _walk_fields(item.get("children"), f"{prefix}[{i}].children", path)
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
                Finding(
                    "error",
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
                    Finding(
                        "warning",
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


def _lint_hubl(html: str, fields: Any, text: str | None) -> list[Finding]:
    report = read_hubl(html, fields if isinstance(fields, list) else None)
    findings = [
        Finding("error", issue.code, "module.html", issue.line, issue.path, issue.message)
        for issue in report.issues
    ]
    if not isinstance(fields, list):
        return findings
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
                Finding(
                    "warning",
                    "unused_field",
                    "fields.json",
                    _name_line(text, str(name), nth),
                    json_path,
                    f"{what} {'.'.join(names)!r} is never used in module.html; use it or remove it",
                )
            )
    return findings


def _config_findings(warnings: list[ConfigWarning]) -> list[Finding]:
    return [
        Finding(
            "warning",
            "unknown_key",
            "meta.json" if w.path.startswith("meta") else "fields.json",
            None,
            w.path,
            w.message,
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
        report.findings.append(_error_of(exc))
        warnings = []
    report.findings += _config_findings(warnings)
    source = module.config.get("source")
    text = source.get("fields.json") if isinstance(source, dict) else None
    fields = module.config.get("fields")
    report.findings += _lint_fields(fields, text)
    files = set((module.config.get("files") or {}).keys())
    report.findings += _lint_hubl(module.html, _fields_for_hubl(module.config, files), text)
    report.sort()
    return report


def _error_of(exc: InvalidHubSpotConfig | InvalidModuleArchive) -> Finding:
    message = exc.message
    file = "fields.json" if "fields" in (exc.field or "") else "meta.json"
    for candidate in ("meta.json", "fields.json", "module.html", "module.css", "module.js"):
        if candidate in message.split(":", 1)[0]:
            file = candidate
    line_match = re.search(r"line (\d+)", message)
    return Finding(
        "error",
        exc.code,
        file,
        int(line_match.group(1)) if line_match else None,
        exc.field,
        message,
    )


def _check_raw(folder: str, files: dict[str, bytes]) -> CheckReport:
    """Check a folder as read; when it does not import, still lint what can be read."""
    try:
        return check_module(_from_files(folder, files))
    except (InvalidHubSpotConfig, InvalidModuleArchive) as exc:
        report = CheckReport(folder or "module", [_error_of(exc)])
    texts = {
        n: d.decode("utf-8", "replace") for n, d in files.items() if n.endswith((".json", ".html"))
    }
    fields: Any = None
    with contextlib.suppress(InvalidModuleArchive):
        fields = jsontext.loads(texts.get("fields.json", "[]"), file="fields.json")
    report.findings += _lint_fields(fields, texts.get("fields.json"))
    if "module.html" in texts:
        hubl = _lint_hubl(texts["module.html"], fields, texts.get("fields.json"))
        report.findings += hubl
    if any(f.code == "duplicate_field" for f in report.findings):
        # The lint lists every duplicate; the config's own refusal names only the first.
        report.findings = [f for f in report.findings if "two sibling fields" not in f.message]
    return report


def check_path(source: Path | bytes) -> list[CheckReport]:
    """Check every module of a zip, a `.module` folder or a folder of them."""
    found = _collect(source)
    if not found:
        raise InvalidModuleArchive(
            "no module found: expected NAME.module folders holding meta.json and module.html",
            field="file",
        )
    reports = [_check_raw(PurePosixPath(f).name, files) for f, files in sorted(found.items())]
    for report in reports:
        report.sort()
    return reports
