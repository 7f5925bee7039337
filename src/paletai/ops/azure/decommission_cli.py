"""`paletai deploy decommission` (logic in decommission.py), registered on `deploy_app`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.decommission import Decommission, Stage, parse_cutover
from paletai.ops.cli import JsonOut, fail, write_json
from paletai.ops.cli import err as console
from paletai.ops.db.blob import BackupStore
from paletai.ops.errors import OpsError


def register(app: typer.Typer) -> None:
    app.command("decommission")(decommission)


def _refuse(request: Decommission, why: str, json_out: Path | None) -> NoReturn:
    request.refused = why
    write_json(json_out, request.result())
    fail(f"refused: {why}; nothing done", 1)


def decommission(
    stage: Annotated[
        Stage,
        typer.Option(
            "--stage",
            help="stop (az webapp stop; 1 day after the cutover), delete-app (az webapp delete; "
            "7 days), delete-group (az group delete; 30 days).",
        ),
    ],
    app: Annotated[str, typer.Option("--app", help="The OLD web app's name.")],
    resource_group: Annotated[
        str, typer.Option("--resource-group", "-g", help="The OLD resource group.")
    ],
    cutover_at: Annotated[
        str,
        typer.Option(
            "--cutover-at",
            help="When the new side took over (ISO 8601, e.g. 2024-06-01T14:30:00Z; UTC if no "
            "zone is given). The waits count from here.",
        ),
    ],
    backups: Annotated[
        str | None,
        typer.Option(
            "--backups",
            help="Where `db backup --to-blob` keeps the old database's backups (connection "
            "string or account URL); the delete stages need one from the last 24 hours.",
        ),
    ] = None,
    container: Annotated[
        str | None, typer.Option("--container", help="With --backups: the blob container.")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="With --backups: the old database's name (default: any)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Go on before the checklist's wait is over.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for the resource group's name.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check, then print the az line; run nothing.")
    ] = False,
    subscription: Annotated[
        str | None,
        typer.Option("--subscription", help="Subscription id or name (default: az's current)."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Phase 7: stop, then delete, the old environment, one guarded stage at a time.

    Refuses a stage before the checklist's wait (unless --force), a delete without a complete
    backup of the old database from the last 24 hours (by its manifest, in --backups), and a
    wrongly typed resource group name. Example:

        paletai deploy decommission --stage delete-app --app emailgeniebackend -g huddleup \\
            --cutover-at 2024-06-01T14:30:00Z --backups "$BACKUP_STORAGE" --container db-backups
    """
    now = dt.datetime.now(dt.UTC)
    try:
        cutover = parse_cutover(cutover_at, now)
    except OpsError as exc:
        fail(str(exc))
    request = Decommission(stage, app, resource_group, cutover, now, force=force, dry_run=dry_run)
    store = None
    try:
        if backups is not None:
            if not container:
                fail("--backups needs --container NAME (the blob container of the backups)")
            store = BackupStore.open(backups, container)
        why = request.check_wait() or request.check_backup(store, db)
    except OpsError as exc:
        fail(str(exc))
    finally:
        if store is not None:
            store.close()
    if why is not None:
        _refuse(request, why, json_out)
    if request.backup is not None:
        console.print(
            f"backup to fall back on: {request.backup.name} (finished {request.backup_finished_at})"
        )
    if not (yes or dry_run):
        typed = typer.prompt(
            f"This will {request.what}. Type the resource group's name to go on",
            default="",
            show_default=False,
        )
        if typed.strip() != resource_group:
            wrong = f"the name typed ({typed.strip()!r}) is not {resource_group!r}"
            _refuse(request, wrong, json_out)
    try:
        az = AzCli.locate(subscription, dry_run=dry_run)
        request.run(az)
    except DeployError as exc:
        write_json(json_out, request.result())
        fail(str(exc), 1)
    write_json(json_out, request.result())
    if not dry_run:
        console.print(
            f"[green]done[/]: {escape(request.what)} "
            f"({request.days_since_cutover:.1f} days after the cutover"
            + (", forced" if force and request.days_since_cutover < request.wait_days else "")
            + ")"
        )
