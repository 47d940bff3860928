"""`templator module`: HubSpot modules in (import), out (export) and checked (check).

Heavy imports (the database layer, the module reader) stay inside the commands, so
`templator --help` does not load them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from templator.cli.context import console, err_console, fail, run

if TYPE_CHECKING:
    from templator.hubspot.check import CheckReport
    from templator.hubspot.package import ModuleContent
    from templator.stored_object.service import ModuleExport

app = typer.Typer(no_args_is_help=True)


OPERATOR_ID = "system"
"""The actor id of the operator at the command line (an ADMIN no user row stands for)."""


def _operator() -> Any:
    from templator.kit.actor import Actor
    from templator.models import UserRole

    return Actor(OPERATOR_ID, UserRole.ADMIN)


# --- export ----------------------------------------------------------------------------


async def _export(template_id: str, upload: bool, expires: int) -> ModuleExport:
    from templator.audit.service import CLI
    from templator.cli.context import connections
    from templator.kit.uow import unit_of_work
    from templator.stored_object.service import StoredObjectService

    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        service = StoredObjectService(session, conns.cache, conns.store)
        return await service.export_module(
            _operator(), template_id, upload=upload, origin=CLI, expires_in=expires
        )


async def _project_modules(project_id: str) -> list[ModuleContent]:
    from templator.cli.context import connections
    from templator.kit.pagination import PageParams
    from templator.kit.uow import unit_of_work
    from templator.template.service import TemplateService, module_of

    rows = []
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        service = TemplateService(session, conns.cache)
        cursor = None
        while True:
            page = await service.list_for_project(
                _operator(), project_id, PageParams(limit=200, cursor=cursor)
            )
            rows += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
    rows.sort(key=lambda t: (t.created_at, t.id))  # oldest first: stable folder names
    return [module_of(t) for t in rows]


def _export_project(project_id: str, output: Path, as_json: bool) -> None:
    from templator.hubspot.package import build_modules_zip, write_modules

    modules = run(_project_modules(project_id))
    if not modules:
        fail(f"project {project_id} has no templates to export", code=1)
    if output.suffix.lower() == ".zip":
        data = build_modules_zip(modules)
        output.write_bytes(data)
        where = [str(output)]
    else:
        output.mkdir(parents=True, exist_ok=True)
        where = [str(p) for p in write_modules(modules, output)]
    if as_json:
        print(json.dumps({"project_id": project_id, "modules": len(modules), "written": where}))
        return
    console.print(f"wrote {len(modules)} module(s) to {output}")
    if output.suffix.lower() != ".zip":
        console.print(f"upload with: hs cms upload {output} /<theme>/modules")


@app.command("export")
def export(
    template_id: str | None = typer.Argument(
        None, help="The template to export (or give --project)."
    ),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to write: a .zip, or a folder (with --project)."
    ),
    project: str | None = typer.Option(
        None, "--project", help="Export every template of this project as module folders."
    ),
    upload: bool = typer.Option(False, help="Also store the zip and print a presigned URL."),
    expires: int = typer.Option(3600, min=1, max=604_800, help="URL lifetime in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write TEMPLATE_ID as a module zip, or a project's modules as folders for hs."""
    if (template_id is None) == (project is None):
        fail("give a TEMPLATE_ID or --project PROJECT_ID (not both)")
    if project is not None:
        if upload:
            fail("--upload exports one template; leave it out with --project")
        _export_project(project, output, as_json)
        return
    assert template_id is not None
    # Before anything is read or uploaded: a bad path must not leave an uploaded orphan.
    if output.is_dir():
        fail(f"cannot write {output}: it is a folder; give the zip's file name")
    if not output.parent.is_dir():
        fail(f"cannot write {output}: the folder {output.parent} does not exist")
    result = run(_export(template_id, upload, expires))
    output.write_bytes(result.data)
    info = {
        "file": str(output),
        "bytes": len(result.data),
        "sha256": result.sha256,
        "key": result.key,
        "url": result.url,
    }
    if as_json:
        print(json.dumps(info))
        return
    console.print(f"wrote {output} ({len(result.data):,} bytes, sha256 {result.sha256[:12]})")
    if result.url:
        console.print(f"stored as {result.key}\ndownload (expires in {expires}s): {result.url}")


# --- import ----------------------------------------------------------------------------


def _creates(
    modules: list[ModuleContent], project_id: str, name: str | None
) -> tuple[list[tuple[ModuleContent, Any]], list[tuple[str, str]]]:
    """Each module as a TemplateCreate, all validated before anything is stored; the
    modules that do not validate, with why."""
    from pydantic import ValidationError

    from templator.template.schemas import TemplateCreate

    creates, refused = [], []
    for module in modules:
        try:
            create = TemplateCreate(
                project_id=project_id,
                name=name or module.name,
                html_content=module.html,
                css_content=module.css,
                js_content=module.js,
                hubspot_config=module.config,
            )
        except ValidationError as exc:
            why = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            refused.append((module.folder, why))
            continue
        creates.append((module, create))
    return creates, refused


async def _import(creates: list[tuple[ModuleContent, Any]]) -> list[str]:
    from rich.progress import Progress

    from templator.cli.context import connections
    from templator.kit.uow import unit_of_work
    from templator.template.service import TemplateService

    ids = []
    # One transaction: every module given becomes a template, or none does.
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        service = TemplateService(session, conns.cache)
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task("importing", total=len(creates))
            for module, create in creates:
                progress.update(task, description=module.folder)
                template = await service.create(_operator(), create)
                ids.append(template.id)
                progress.advance(task)
    return ids


def _read(path: Path) -> tuple[list[ModuleContent], list[tuple[str, str]]]:
    from templator.exceptions import TemplatorError
    from templator.hubspot.package import read_all

    try:
        result = read_all(path)
    except TemplatorError as exc:
        fail(exc.message, code=1)
        raise  # unreachable
    return result.modules, [(r.folder, r.message) for r in result.refused]


def _print_refused(refused: list[tuple[str, str]], *, imported: bool) -> None:
    from rich.markup import escape

    verb = "skipped" if imported else "refused"
    for folder, why in refused:
        err_console.print(f"[red]{verb}[/] {escape(folder)}: {escape(why)}", highlight=False)


@app.command("import")
def import_(
    path: Path = typer.Argument(
        ..., exists=True, help="A module zip, a NAME.module folder, or a folder of them."
    ),
    project: str = typer.Option(..., "--project", help="Project that receives the templates."),
    name: str | None = typer.Option(
        None, help="Template name, for a single module (default: the module's label)."
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Import the modules that pass (in one transaction) and list the refused ones, "
        "instead of importing nothing when one is refused.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Import HubSpot modules as templates of one project: all or none, unless
    --skip-invalid. Every refused module is listed with why."""
    modules, refused = _read(path)
    if name is not None and len(modules) + len(refused) > 1:
        fail(f"--name names one template, but {path} holds {len(modules) + len(refused)} modules")
    creates, invalid = _creates(modules, project, name)
    refused += invalid
    if refused and not skip_invalid:
        if as_json:
            print(json.dumps({"project_id": project, "imported": [], "refused": _rows(refused)}))
        else:
            _print_refused(refused, imported=False)
        total = len(modules) + len(refused) - len(invalid)
        fail(
            f"{len(refused)} of {total} module(s) refused; nothing was imported "
            "(--skip-invalid imports the others)",
            code=1,
        )
    ids = run(_import(creates)) if creates else []
    _report(project, creates, ids, refused, as_json)


def _rows(refused: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"module": folder, "reason": why} for folder, why in refused]


def _report(
    project: str,
    creates: list[tuple[ModuleContent, Any]],
    ids: list[str],
    refused: list[tuple[str, str]],
    as_json: bool,
) -> None:
    from templator.hubspot.package import module_files

    done = [m for m, _ in creates]
    rows: list[dict[str, Any]] = [
        {
            "module": m.folder,
            "template_id": tid,
            "files": len(module_files(m)),
            "warnings": [str(w) for w in m.warnings],
        }
        for m, tid in zip(done, ids, strict=True)
    ]
    if as_json:
        print(json.dumps({"project_id": project, "imported": rows, "refused": _rows(refused)}))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(rows)} module(s) imported into project {project}")
    for column in ("module", "template", "files", "warnings"):
        table.add_column(column)
    for m, tid in zip(done, ids, strict=True):
        notes = "\n".join(escape(str(w)) for w in m.warnings) or "-"
        table.add_row(escape(m.folder), tid, str(len(module_files(m))), notes)
    console.print(table)
    if refused:
        _print_refused(refused, imported=True)


# --- check -----------------------------------------------------------------------------


async def _check_template(template_id: str) -> CheckReport:
    from templator.cli.context import connections
    from templator.kit.uow import unit_of_work
    from templator.template.service import TemplateService

    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        return await TemplateService(session, conns.cache).check(
            _operator(), template_id, record=False
        )


@app.command("check")
def check(
    target: str = typer.Argument(
        ..., help="A module zip, a NAME.module folder, a folder of them, or a TEMPLATE_ID."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON."),
) -> None:
    """What HubSpot would refuse or render wrong: one line a problem with every line it
    occurs on and its impact (would not upload / would render wrong / style); exit 1 when
    there are errors."""
    from rich.markup import escape

    from templator.exceptions import TemplatorError
    from templator.hubspot.check import check_path

    path = Path(target)
    if not path.exists() and not re.fullmatch(r"[a-z][0-9a-z]{24}", target):
        fail(f"{target}: no such file or folder, and not a template id", code=1)
    if path.exists():
        try:
            reports = check_path(path)
        except TemplatorError as exc:
            fail(exc.message, code=1)
            raise  # unreachable
    else:
        reports = [run(_check_template(target))]
    if as_json:
        print(json.dumps({"modules": [r.as_json() for r in reports]}))
    else:
        for report in reports:
            verdict = "[green]ok[/]" if report.ok else "[bold red]fails[/]"
            console.print(
                f"{report.module}: {verdict} — {report.errors} error(s), "
                f"{report.warnings} warning(s), score {report.score:.2f}",
                highlight=False,
            )
            for finding in report.findings:
                colour = "red" if finding.severity == "error" else "yellow"
                # One line a finding, never wrapped: `grep module.html:12` finds it.
                console.print(
                    f"  [{colour}]{escape(str(finding))}[/]", highlight=False, soft_wrap=True
                )
    if any(not r.ok for r in reports):
        raise typer.Exit(1)
