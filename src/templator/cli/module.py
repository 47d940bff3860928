"""`templator module`: export a template as a HubSpot module, import one back."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from templator.cli.context import connections, console, fail, run
from templator.hubspot.package import read_module
from templator.kit.actor import Actor
from templator.kit.uow import unit_of_work
from templator.models import UserRole
from templator.storage.assets import SYSTEM, AssetService, ModuleExport
from templator.template.schemas import TemplateCreate
from templator.template.service import TemplateService

app = typer.Typer(no_args_is_help=True)
OPERATOR = Actor(SYSTEM, UserRole.ADMIN)


async def _export(template_id: str, upload: bool, expires: int) -> ModuleExport:
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        templates = TemplateService(session, conns.cache, conns.store)
        service = AssetService(session, conns.store, templates)
        return await service.export_module(OPERATOR, template_id, upload=upload, expires_in=expires)


@app.command("export")
def export(
    template_id: str = typer.Argument(..., help="The template to export."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the zip."),
    upload: bool = typer.Option(False, help="Also store the zip and print a presigned URL."),
    expires: int = typer.Option(3600, min=1, max=604_800, help="URL lifetime in seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Write TEMPLATE_ID as a HubSpot module zip, ready for `hs cms upload`."""
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


async def _import(path: Path, project_id: str, name: str | None) -> str:
    module = read_module(path)
    async with connections() as conns, unit_of_work(conns.sessionmaker, conns.cache) as session:
        template = await TemplateService(session, conns.cache).create(
            OPERATOR,
            TemplateCreate(
                project_id=project_id,
                name=name or module.name,
                html_content=module.html,
                css_content=module.css,
                js_content=module.js,
                hubspot_config={
                    "meta": module.config.meta_json(),
                    "fields": module.config.fields_json(),
                },
            ),
        )
        return template.id


@app.command("import")
def import_(
    path: Path = typer.Argument(..., exists=True, help="A .module folder or a module zip."),
    project: str = typer.Option(..., "--project", help="Project that receives the template."),
    name: str | None = typer.Option(None, help="Template name (default: the module's label)."),
) -> None:
    """Read a HubSpot module folder or zip into a new template."""
    template_id = run(_import(path, project, name))
    console.print(f"imported as template {template_id}")
