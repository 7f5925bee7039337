"""`paletai storage ...`: blob storage operations for the migration (mounted by paletai.cli)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobProperties
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from paletai.ops.cli import JsonOut, console, fail, write_json
from paletai.ops.storage.copy import (
    BlobOutcome,
    ContainerCopier,
    CopyReport,
    RewriteReport,
    StorageCopyOutcome,
    copy_storage,
)
from paletai.storage.base import StorageError

storage_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Blob storage: copy the cover images between storage accounts.",
    no_args_is_help=True,
)


@storage_app.callback()
def storage() -> None:
    """Blob storage operations (a group, also when it has a single command)."""


def _fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


async def _copy(
    source: str,
    target: str,
    container: str,
    to_container: str | None,
    server_copy: bool,
    concurrency: int,
    limit: int | None,
    rewrite_db_uri: str | None,
    db_name: str | None,
) -> StorageCopyOutcome:
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[done_bytes]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        by_count = progress.add_task("blobs", total=None, done_bytes="")
        done = [0, 0]  # bytes copied so far, bytes in all

        def listed(copier: ContainerCopier, blobs: list[BlobProperties]) -> None:
            done[1] = sum(b.size for b in blobs)
            console.print(
                f"Copying {len(blobs)} blob(s), {_fmt_bytes(done[1])}\n"
                f"  from {copier.source_url}\n  to   {copier.destination_url}"
            )
            progress.update(by_count, total=len(blobs))

        def advance(outcome: BlobOutcome) -> None:
            done[0] += outcome.size
            shown = f"{_fmt_bytes(done[0])}/{_fmt_bytes(done[1])}"
            progress.update(by_count, advance=1, done_bytes=shown)

        return await copy_storage(
            source,
            target,
            container=container,
            to_container=to_container,
            server_copy=server_copy,
            concurrency=concurrency,
            limit=limit,
            rewrite_db_uri=rewrite_db_uri,
            db_name=db_name,
            on_listed=listed,
            on_outcome=advance,
        )


def _rewrite_target(db_uri: str | None, db_name: str | None) -> tuple[str, str | None]:
    """The database for --rewrite-urls: --db-uri, else the app's DB_PATH (and DB_NAME)."""
    if db_uri:
        return db_uri, db_name
    from paletai.config import load_settings

    settings = load_settings()
    if settings.DB_PATH is None:
        raise typer.BadParameter("--rewrite-urls needs --db-uri (or DB_PATH)")
    return settings.DB_PATH.get_secret_value(), db_name or settings.DB_NAME


def _summary(report: CopyReport, rewrite: RewriteReport | None) -> None:
    table = Table(title="storage copy", show_header=False)
    table.add_row("copied", f"{report.copied} ({_fmt_bytes(report.bytes_copied)})")
    table.add_row("  server-side / streamed", f"{report.server_side} / {report.streamed}")
    table.add_row("skipped (already identical)", f"{report.skipped}")
    table.add_row("failed", f"[red]{report.failed}[/red]" if report.failed else "0")
    not_done = report.total - report.copied - report.skipped - report.failed
    if not_done:
        table.add_row("left for a later run (--limit)", str(not_done))
    if rewrite is not None:
        table.add_row("image URLs rewritten", str(rewrite.rewritten))
        table.add_row("image URLs already new", str(rewrite.already))
        if rewrite.missing:
            table.add_row("image URLs left (blob not copied)", f"[red]{rewrite.missing}[/red]")
    console.print(table)
    if report.destination_public is False:
        console.print(
            "[yellow]warning:[/yellow] the source container is public but the destination is "
            "private: the images will not load from the new account until its access level is "
            "'Blob' (see the log above for how)"
        )
    for name, reason in sorted(report.failures.items())[:20]:
        console.print(f"[red]failed[/red] {name}: {reason}")
    if report.failed > 20:
        console.print(f"... and {report.failed - 20} more")


@storage_app.command("copy")
def copy_command(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            envvar="PALETAI_COPY_FROM",
            help="connection string of the old storage account",
            show_default=False,
        ),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            envvar="PALETAI_COPY_TO",
            help="connection string of the new storage account",
            show_default=False,
        ),
    ],
    container: Annotated[str, typer.Option(help="container to copy")] = "game-images",
    to_container: Annotated[
        str | None, typer.Option(help="container name in the new account (default: the same)")
    ] = None,
    rewrite_urls: Annotated[
        bool, typer.Option("--rewrite-urls", help="point games.image_url at the new account")
    ] = False,
    db_uri: Annotated[
        str | None, typer.Option(help="MongoDB URI for --rewrite-urls (default: DB_PATH)")
    ] = None,
    db: Annotated[str | None, typer.Option(help="database name (default: from the URI)")] = None,
    server_copy: Annotated[
        bool, typer.Option(help="let Azure copy server-side; --no-server-copy streams")
    ] = True,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 8,
    limit: Annotated[
        int | None, typer.Option(min=0, help="copy at most N blobs this run (a trial run)")
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Copy every blob of the container to the new account, verify it, and resume if re-run.

    Connection strings may come from PALETAI_COPY_FROM / PALETAI_COPY_TO instead of the
    command line (they hold account keys).
    """
    rewrite_db_uri, db_name = _rewrite_target(db_uri, db) if rewrite_urls else (None, db)
    try:
        result = asyncio.run(
            _copy(
                source,
                target,
                container,
                to_container,
                server_copy,
                concurrency,
                limit,
                rewrite_db_uri,
                db_name,
            )
        )
    except StorageError as exc:
        fail(str(exc))
    except AzureError as exc:
        # e.g. a wrong key or an unreachable account; the SDK's message names no secret.
        fail(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    _summary(result.copy, result.rewrite)
    write_json(json_out, result.to_result())
    if result.copy.failed:
        raise typer.Exit(1)
