"""`paletai db ...`: backup, restore, verify, sync and cutover, as one Typer sub-app."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Annotated, TypeVar

import typer
from rich.live import Live
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from paletai.ops.cli import JsonOut, fail, run, write_json
from paletai.ops.cli import err as console
from paletai.ops.db.archive import open_archive_in, open_archive_out
from paletai.ops.db.archive_io import backup_to_archive, restore_from_archive
from paletai.ops.db.backup import BackupResult
from paletai.ops.db.backup import backup as run_backup
from paletai.ops.db.cutover import (
    CommandSwitch,
    CutoverFailed,
    CutoverReport,
    MaintenanceSwitch,
    WriteSwitch,
    verify_after,
)
from paletai.ops.db.cutover import cutover as run_cutover
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.parallel import DEFAULT_PARALLEL
from paletai.ops.db.progress import collection_progress
from paletai.ops.db.restore import RestoreResult, not_empty_error
from paletai.ops.db.restore import restore as run_restore
from paletai.ops.db.sync import (
    SyncEngine,
    SyncOptions,
    sync_until_synced,
    syncing,
)
from paletai.ops.db.verify import VerifyReport
from paletai.ops.db.verify import verify as run_verify
from paletai.ops.errors import OpsError
from paletai.ops.results import DbRepairLikesResult, DbSyncResult

db_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Move the database: backup, restore, verify, live sync and cutover (with a way back).",
    no_args_is_help=True,
)

T = TypeVar("T")

UriSource = Annotated[str, typer.Option("--source", help="URI of the database to copy from.")]
UriTarget = Annotated[str, typer.Option("--target", help="URI of the database to copy to.")]
DbName = Annotated[
    str | None,
    typer.Option("--db", help="Database name (default: the URI's path, else 'paletai')."),
]
TargetDbName = Annotated[
    str | None, typer.Option("--target-db", help="Target database name, when it differs.")
]


Parallel = Annotated[
    int,
    typer.Option(
        "--parallel",
        min=1,
        metavar="N",
        help="Collections at once (as mongorestore's --numParallelCollections).",
    ),
]
NsExclude = Annotated[
    list[str] | None,
    typer.Option(
        "--ns-exclude",
        metavar="PATTERN",
        help="Leave out these namespaces (db.coll, * wildcards; repeatable).",
    ),
]
IncludeUsers = Annotated[
    bool,
    typer.Option(
        "--include-users",
        help="Also the database's users and roles (mongodump --dumpDbUsersAndRoles layout); "
        "needs a server with authentication and the backup/restore role.",
    ),
]


ArchiveOut = Annotated[
    str | None,
    typer.Option(
        "--archive",
        metavar="FILE|-",
        help="Instead of --out: one archive file in mongodump --archive's format; '-' for stdout.",
    ),
]
ArchiveIn = Annotated[
    str | None,
    typer.Option(
        "--archive",
        metavar="FILE|-",
        help="Instead of --dir: one archive (mongodump --archive's format); '-' for stdin.",
    ),
]


@db_app.command()
def backup(
    uri: Annotated[str, typer.Option("--uri", help="URI of the database to back up.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Dump directory (created if missing).")
    ] = None,
    archive: ArchiveOut = None,
    db: DbName = None,
    gzip: Annotated[
        bool, typer.Option("--gzip", help="Compress each file (.gz), or the whole archive.")
    ] = False,
    consistent: Annotated[
        bool,
        typer.Option(
            "--consistent",
            help="Point in time: also record the changes made during the dump (oplog.bson); "
            "restore with --oplog-replay.",
        ),
    ] = False,
    parallel: Parallel = DEFAULT_PARALLEL,
    ns_exclude: NsExclude = None,
    collection: Annotated[
        str | None, typer.Option("--collection", metavar="NAME", help="Only this collection.")
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query",
            metavar="EXTJSON",
            help="Only the documents this filter matches (Extended JSON, as mongodump's "
            "--query; needs --collection).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be written where; write nothing."),
    ] = False,
    include_users: IncludeUsers = False,
    to_blob: Annotated[
        str | None,
        typer.Option(
            "--to-blob",
            help="Instead of --out: stream the dump (gzip) into Blob Storage. A connection "
            "string, or an account URL https://ACCOUNT.blob.core.windows.net (signs in with "
            "DefaultAzureCredential).",
        ),
    ] = None,
    container: Annotated[
        str | None, typer.Option("--container", help="With --to-blob: the blob container.")
    ] = None,
    keep_daily: Annotated[
        int | None,
        typer.Option(help="With --to-blob: keep the newest backup of each of the last N days."),
    ] = None,
    keep_weekly: Annotated[
        int | None,
        typer.Option(help="With --to-blob: keep the newest backup of each of the last N weeks."),
    ] = None,
    test_restore: Annotated[
        str | None,
        typer.Option(
            "--test-restore",
            help="With --to-blob: restore the backup into a scratch database on this URI, "
            "verify it against the source, then drop it.",
        ),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Dump one database in stock mongodump's layout: `OUT/DB/COLL.bson` + `.metadata.json`,
    or as one archive (`--archive FILE`, `-` for stdout), as `mongodump --archive` writes it.

    Views (definition only) and time-series collections (their buckets) are included, with
    every collection's options.

    Stock `mongorestore OUT` (or `mongorestore --archive`) reads the result. `--consistent`
    takes a live database at one instant (restore it with `--oplog-replay`). Examples:

    `paletai db backup --uri "$DB_PATH" --out ./dump-2024-06-01 --gzip`

    `paletai db backup --uri "$OLD_DB" --archive old.archive --gzip --consistent`

    `paletai db backup --uri "$DB_PATH" --out ./recent --collection games --query
    '{"created_at": {"$gte": {"$date": "2024-06-01T00:00:00Z"}}}'`

    Or into Blob Storage, one folder per backup (`paletai-DB-UTCSTAMP/`, manifest.json last),
    with retention and a tested restore:

    `paletai db backup --uri "$DB_PATH" --to-blob "$BACKUP_STORAGE" --container db-backups
    --keep-daily 7 --keep-weekly 4 --test-restore "$SCRATCH_DB"`
    """
    if archive is not None:
        if out is not None or to_blob is not None:
            fail("give one of --out DIR, --archive FILE|- or --to-blob ... --container NAME")
        if collection or query or ns_exclude or dry_run or include_users or container:
            fail(
                "--archive backs up the whole database: --collection, --query, --ns-exclude, "
                "--dry-run and --include-users go with --out"
            )
        with collection_progress() as progress:
            result = _backup_archive(uri, archive, db, gzip, consistent, progress)
        _print_backup(result, archive)
        write_json(json_out, result.to_result())
        return
    if to_blob is not None or out is None:
        if out is not None or to_blob is None:
            fail(
                "give one of --out DIR (a dump directory), --archive FILE|- (one archive) "
                "or --to-blob ... --container NAME"
            )
        if consistent:
            fail("--consistent goes with --out or --archive")
        if collection or query or ns_exclude or dry_run or include_users:
            fail(
                "--to-blob backs up the whole database (gzip): --collection, --query, "
                "--ns-exclude, --dry-run and --include-users go with --out"
            )
        from paletai.ops.db.blob_cli import backup_to_blob_command

        backup_to_blob_command(
            uri,
            to_blob,
            container,
            db=db,
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            test_restore=test_restore,
            json_out=json_out,
        )
        return
    if container or keep_daily is not None or keep_weekly is not None or test_restore:
        fail("--container, --keep-daily, --keep-weekly and --test-restore go with --to-blob")
    with collection_progress(quiet=dry_run) as progress:
        result = run(
            run_backup(
                uri,
                out,
                db_name=db,
                compress=gzip,
                progress=progress,
                parallel=parallel,
                ns_exclude=ns_exclude or [],
                collection=collection,
                query=query,
                dry_run=dry_run,
                include_users=include_users,
                consistent=consistent,
            )
        )
    if result.dry_run:
        console.print(f"dry run, nothing written: the backup of {result.database} would write")
        for item in result.collections:
            if item.path is None:  # a view: its definition only
                console.print(f"  {item.name}.metadata.json  ({item.kind} definition)")
                continue
            console.print(
                f"  {item.path}  {item.documents} documents (+ .metadata.json)", soft_wrap=True
            )
        if result.users is not None:
            console.print(
                f"  {out / result.database}/$admin.system.users.bson, .roles.bson  "
                f"{result.users} users, {result.roles} roles"
            )
        console.print(
            f"would back up {result.database}: {len(result.collections)} collections, "
            f"{result.documents} documents -> {out}",
            soft_wrap=True,
        )
        write_json(json_out, result.to_result())
        return
    _print_backup(result, str(out))
    write_json(json_out, result.to_result())


def _print_backup(result: BackupResult, where: str) -> None:
    mb = result.bytes / 1e6
    rate = result.documents / result.seconds if result.seconds else 0.0
    users = f", {result.users} users, {result.roles} roles" if result.users is not None else ""
    console.print(
        f"[green]backed up[/] {result.database}: {len(result.collections)} collections, "
        f"{result.documents} documents{users}, {mb:.1f} MB in {result.seconds:.1f} s "
        f"({rate:.0f} docs/s) -> {where}"
    )
    if result.consistent is not None:
        c = result.consistent
        console.print(
            f"consistent at {c.ended_at}: {c.events} changes during the dump, {c.entries} "
            f"documents recorded in {c.file} ({c.rounds} passes); restore with --oplog-replay"
        )


def _backup_archive(
    uri: str, archive: str, db: str | None, gzip: bool, consistent: bool, progress: Progress
) -> BackupResult:
    if archive == "-":
        if sys.stdout.isatty():
            fail("--archive - writes the archive to stdout, which is a terminal: redirect it")
        return run(_write_archive(uri, sys.stdout.buffer, "-", db, gzip, consistent, progress))
    path = Path(archive)
    if path.is_dir():
        fail(f"--archive {archive} is a directory: give a file path (or --out for a directory)")
    try:
        stream = path.open("wb")
    except OSError as exc:
        fail(f"cannot write --archive {archive}: {exc.strerror or exc}")
    try:
        with stream:
            return run(_write_archive(uri, stream, archive, db, gzip, consistent, progress))
    except (typer.Exit, KeyboardInterrupt):
        path.unlink(missing_ok=True)  # never leave half an archive behind
        raise


async def _write_archive(
    uri: str,
    stream: IO[bytes],
    name: str,
    db: str | None,
    gzip: bool,
    consistent: bool,
    progress: Progress,
) -> BackupResult:
    out = open_archive_out(stream, compress=gzip)
    result = await backup_to_archive(
        uri, out, archive_name=name, db_name=db, consistent=consistent, progress=progress
    )
    if out is not stream:
        out.close()  # the gzip trailer; the file or stdout itself stays open
    stream.flush()
    return result


@db_app.command()
def restore(
    uri: Annotated[str, typer.Option("--uri", help="URI of the database to restore into.")],
    dir: Annotated[
        Path | None, typer.Option("--dir", help="Dump directory (ours or mongodump's).")
    ] = None,
    archive: ArchiveIn = None,
    gzip: Annotated[
        bool, typer.Option("--gzip", help="The --archive is gzip-compressed (as --gzip wrote it).")
    ] = False,
    oplog_replay: Annotated[
        bool,
        typer.Option(
            "--oplog-replay",
            help="Apply the dump's oplog (mongodump --oplog, backup --consistent) afterwards.",
        ),
    ] = False,
    from_blob: Annotated[
        str | None,
        typer.Option(
            "--from-blob",
            help="Instead of --dir: restore a backup of `db backup --to-blob`, streamed from "
            "Blob Storage (connection string or account URL).",
        ),
    ] = None,
    container: Annotated[
        str | None, typer.Option("--container", help="With --from-blob: the blob container.")
    ] = None,
    latest: Annotated[
        bool, typer.Option("--latest", help="With --from-blob: the newest complete backup.")
    ] = False,
    name: Annotated[
        str | None,
        typer.Option("--name", help="With --from-blob: this backup (paletai-DB-UTCSTAMP)."),
    ] = None,
    backup_db: Annotated[
        str | None,
        typer.Option("--db", help="With --from-blob --latest: only backups of this database."),
    ] = None,
    drop: Annotated[
        bool, typer.Option("--drop", help="Drop each target collection first.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Merge into non-empty collections (duplicates counted)."),
    ] = False,
    ns_include: Annotated[
        list[str] | None,
        typer.Option("--ns-include", help="Only these namespaces (db.coll, * wildcards)."),
    ] = None,
    ns_exclude: NsExclude = None,
    ns_from: Annotated[
        list[str] | None, typer.Option("--ns-from", help="Rename namespaces: pattern ...")
    ] = None,
    ns_to: Annotated[list[str] | None, typer.Option("--ns-to", help="... to this.")] = None,
    parallel: Parallel = DEFAULT_PARALLEL,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Say what would be restored into what (drop or not); write nothing."
        ),
    ] = False,
    include_users: IncludeUsers = False,
    json_out: JsonOut = None,
) -> None:
    """Restore a dump: plain or gzip, our dumps or stock mongodump's; indexes from metadata.
    `--archive FILE` (or `-` for stdin) reads one archive as `mongodump --archive` writes it.

    Each collection is created with its kind (view, time-series) and options (capped, validator,
    collation, ...); one the target cannot hold is a `failed` line naming it, and exit 1.

    Refuses a non-empty target unless --drop or --force, and a dump holding an oplog unless
    --oplog-replay. Examples (rename the database; a stock archive from a pipe):

    `paletai db restore --uri "$NEW_DB" --dir ./dump --ns-from 'paletai.*' --ns-to 'paletai2.*'`

    `mongodump --uri "$OLD_DB" --archive | paletai db restore --uri "$NEW_DB" --archive -`
    """
    mapper = run(_mapper(ns_include or [], ns_from or [], ns_to or [], ns_exclude or []))
    if archive is not None:
        if dir is not None or from_blob is not None:
            fail("give one of --dir DUMP, --archive FILE|- or --from-blob ... --container NAME")
        if dry_run or include_users or container or latest or name or backup_db:
            fail("--dry-run and --include-users go with --dir; --container ... with --from-blob")
        with collection_progress() as progress:
            result = _restore_archive(
                uri, archive, gzip, drop, force, oplog_replay, mapper, progress
            )
        _print_restore(result)
        write_json(json_out, result.to_result())
        if not result.ok:
            raise typer.Exit(1)
        return
    if gzip:
        fail("--gzip goes with --archive; a dump directory's .gz files are read as they are")
    if from_blob is not None or dir is None:
        if dir is not None or from_blob is None:
            fail(
                "give one of --dir DUMP, --archive FILE|- (one archive) or "
                "--from-blob ... --container NAME (--latest | --name)"
            )
        if dry_run or include_users:
            fail("--dry-run and --include-users go with --dir")
        from paletai.ops.db.blob_cli import restore_from_blob_command

        restore_from_blob_command(
            uri,
            from_blob,
            container,
            latest=latest,
            name=name,
            db=backup_db,
            drop=drop,
            force=force,
            mapper=mapper,
            json_out=json_out,
        )
        return
    if container or latest or name or backup_db:
        fail("--container, --latest, --name and --db go with --from-blob")
    with collection_progress(quiet=dry_run) as progress:
        result = run(
            run_restore(
                uri,
                dir,
                drop=drop,
                force=force,
                mapper=mapper,
                progress=progress,
                parallel=parallel,
                dry_run=dry_run,
                include_users=include_users,
                oplog_replay=oplog_replay,
            )
        )
    if result.dry_run:
        console.print(f"dry run, nothing written: the restore of {dir} would do")
        for item in result.collections:
            console.print(
                f"  {item.source_namespace} -> {item.namespace}: {item.action}, "
                f"{item.documents} documents, {item.indexes} indexes",
                soft_wrap=True,
            )
        if result.users is not None:
            console.print(f"  users and roles: {result.users} users, {result.roles} roles")
        write_json(json_out, result.to_result())
        if result.refused:
            fail(str(not_empty_error([f"{c.namespace}" for c in result.refused])))
        return
    _print_restore(result)
    write_json(json_out, result.to_result())
    if not result.ok:
        raise typer.Exit(1)


def _print_restore(result: RestoreResult) -> None:
    for item in result.collections:
        if item.problem:
            console.print(
                f"[red]failed[/] {escape(item.source_namespace)}: {escape(item.problem)}",
                soft_wrap=True,
            )
            if item.kind != "collection":
                continue
        line = (
            f"{item.source_namespace} -> {item.namespace}: {item.inserted} inserted, "
            f"{item.duplicates} duplicates, {item.errors} errors, {item.indexes} indexes"
        )
        if item.kind != "collection":
            line += f" ({item.kind})"
        mark = "[red]errors[/] " if item.errors else "[green]ok[/] "
        console.print(("[yellow]options lost[/] " if item.problem else mark) + line)
        for sample in item.error_samples:
            console.print(f"    {sample}")
    if result.users is not None:
        console.print(f"[green]ok[/] users and roles: {result.users} users, {result.roles} roles")
    failed = sum(1 for item in result.collections if item.problem)
    console.print(
        f"restored {result.total('inserted')} documents in {result.seconds:.1f} s "
        f"({result.total('duplicates')} duplicates)"
        + (f"; {failed} collections the target could not make as dumped (above)" if failed else "")
    )
    if result.oplog is not None:
        o = result.oplog
        console.print(
            f"oplog replayed: {o.applied} entries applied, {o.skipped} skipped "
            f"({o.entries} in {o.source}) in {o.seconds:.1f} s"
        )


def _restore_archive(
    uri: str,
    archive: str,
    gzip: bool,
    drop: bool,
    force: bool,
    oplog_replay: bool,
    mapper: NamespaceMapper,
    progress: Progress,
) -> RestoreResult:
    if archive == "-":
        if sys.stdin.isatty():
            fail("--archive - reads the archive from stdin, which is a terminal: pipe it in")
        stream: IO[bytes] = sys.stdin.buffer
        name = "stdin"
    else:
        try:
            stream = Path(archive).open("rb")
        except OSError as exc:
            fail(f"cannot read --archive {archive}: {exc.strerror or exc}")
        name = archive
    with contextlib.closing(stream) if archive != "-" else contextlib.nullcontext(stream):
        return run(
            restore_from_archive(
                uri,
                open_archive_in(stream, compressed=gzip),
                source=name,
                drop=drop,
                force=force,
                oplog_replay=oplog_replay,
                mapper=mapper,
                progress=progress,
            )
        )


async def _mapper(
    include: list[str], ns_from: list[str], ns_to: list[str], exclude: list[str]
) -> NamespaceMapper:
    return NamespaceMapper(include, ns_from, ns_to, exclude=exclude)


def print_verify(report: VerifyReport) -> None:
    table = Table(title=f"verify {report.source_db} -> {report.target_db}")
    for column in ("collection", "source", "target", "missing", "extra", "changed", "indexes"):
        table.add_column(column, justify="left" if column == "collection" else "right")
    for c in report.collections:
        index_diff = len(c.indexes_missing_in_target) + len(c.indexes_extra_in_target)
        index_diff += len(c.index_option_differences)
        style = None if c.identical else "red"
        table.add_row(
            c.name,
            str(c.source_count),
            str(c.target_count),
            str(c.missing_in_target.count),
            str(c.extra_in_target.count),
            str(c.different.count),
            str(index_diff),
            style=style,
        )
    console.print(table)
    for c in report.collections:
        for label, ids in (
            ("missing in target", c.missing_in_target),
            ("extra in target", c.extra_in_target),
            ("changed", c.different),
        ):
            if ids.count:
                console.print(f"  {c.name}: {label}: {', '.join(ids.sample)}")
        for ix in c.indexes_missing_in_target:
            console.print(f"  {c.name}: index missing in target: {ix}")
        for ix in c.indexes_extra_in_target:
            console.print(f"  {c.name}: index extra in target: {ix}")
        for line in c.option_differences + c.index_option_differences:
            console.print(f"  {c.name}: {line}", soft_wrap=True, markup=False)
    verdict = "[green]IDENTICAL[/]" if report.identical else "[bold red]DIFFERENT[/]"
    console.print(f"{verdict} ({report.seconds:.1f} s)")


@db_app.command()
def verify(
    source: UriSource,
    target: UriTarget,
    db: DbName = None,
    target_db: TargetDbName = None,
    json_out: JsonOut = None,
) -> None:
    """Compare two databases document by document (canonical BSON), index by index and option
    by option (collection options, views, time-series; every index option).

    Exit code 0 only when identical; 1 when they differ. Memory stays bounded (both sides are
    streamed in _id order and merged). Example:

    `paletai db verify --source "$OLD_DB" --target "$NEW_DB" --json verify.json`
    """
    report = run(run_verify(source, target, db_name=db, target_db_name=target_db))
    print_verify(report)
    write_json(json_out, report.to_result())
    if not report.identical:
        raise typer.Exit(1)


class StatusLine:
    """A live status table on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, engines: Callable[[], list[SyncEngine]], interval: float = 5.0) -> None:
        self.engines = engines
        self.interval = interval
        self.last: dict[str, tuple[float, int]] = {}

    def rows(self) -> list[tuple[str, str]]:
        out = []
        now = time.monotonic()
        for engine in self.engines():
            for s in engine.statuses:
                key = f"{engine.source_db.name}->{engine.target_db.name}.{s.name}"
                then, events = self.last.get(key, (now, s.events))
                rate = (s.events - events) / (now - then) if now > then else 0.0
                self.last[key] = (now, s.events)
                copy = f"copied {s.copied}/{s.copy_total}"
                text = (
                    f"{s.phase:<8} {copy:<22} events {s.events} ({rate:.0f}/s) "
                    f"lag {s.lag:.2f} s reconciles {s.reconciles} (fixed {s.reconcile_fixes})"
                )
                if s.write_errors:
                    text += f" write errors {s.write_errors}"
                if s.failing:
                    text += f" failing {s.failing} (retried)"
                if s.last_error and s.phase == "retrying":
                    text += f" [{s.last_error}]"
                out.append((s.name, text))
        return out

    def table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        for name, text in self.rows():
            table.add_row(f"[bold]{name}[/]", text)
        return table

    async def run(self) -> None:
        if console.is_terminal:
            with Live(self.table(), console=console, refresh_per_second=4) as live:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(self.table())
        else:
            while True:
                await asyncio.sleep(self.interval)
                for name, text in self.rows():
                    console.print(f"{name}: {text}", soft_wrap=True)


async def _with_signals(engines: Callable[[], list[SyncEngine]], main: Awaitable[T]) -> T:
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for engine in engines():
            engine.stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    status = asyncio.create_task(StatusLine(engines).run())
    try:
        return await main
    finally:
        status.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await status


async def _sync_main(
    source: str,
    target: str,
    *,
    db: str | None,
    target_db: str | None,
    until_synced: bool,
    options: SyncOptions,
    reset: bool,
    wait_seconds: float | None,
) -> DbSyncResult:
    engines: list[SyncEngine] = []
    if until_synced:
        return await _with_signals(
            lambda: engines,
            sync_until_synced(
                source,
                target,
                db_name=db,
                target_db_name=target_db,
                options=options,
                reset=reset,
                wait_seconds=wait_seconds,
                started=engines.append,
            ),
        )

    async def follow() -> DbSyncResult:
        async with syncing(
            source, target, db_name=db, target_db_name=target_db, options=options, reset=reset
        ) as engine:
            engines.append(engine)
            await engine.wait_stopped()
            return engine.summary().to_result(caught_up=False)

    return await _with_signals(lambda: engines, follow())


@db_app.command()
def sync(
    source: UriSource,
    target: UriTarget,
    db: DbName = None,
    target_db: TargetDbName = None,
    until_synced: Annotated[
        bool, typer.Option("--until-synced", help="Exit 0 once the target has caught up.")
    ] = False,
    drop: Annotated[
        bool, typer.Option("--drop", help="Drop non-empty target collections first.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Sync into non-empty target collections.")
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Forget the checkpoint and copy again.")
    ] = False,
    reconcile_interval: Annotated[
        float, typer.Option(help="Seconds between _id-set reconciles.")
    ] = 30.0,
    content_reconcile_interval: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Seconds between content reconciles (every document's bytes compared, so a "
            "missed update is found and repaired); each one reads both sides once.",
        ),
    ] = 900.0,
    timeout: Annotated[
        float | None, typer.Option(help="With --until-synced: give up after this many seconds.")
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Copy a live database and follow its changes (change streams) until stopped (Ctrl-C).

    Restartable: resume tokens and copy progress are kept in the target's __paletai_sync
    collection, so running the same command again continues where it stopped. Example:

    `paletai db sync --source "$OLD_DB" --target "$NEW_DB" --until-synced`

    A write the target refuses is retried for its _id with backoff (up to 30 s apart) until it
    goes through; --until-synced exits 1 naming the _ids still failing when it has caught up.
    """
    options = SyncOptions(
        drop=drop,
        force=force,
        reconcile_interval=reconcile_interval,
        content_reconcile_interval=content_reconcile_interval,
    )
    result = run(
        _sync_main(
            source,
            target,
            db=db,
            target_db=target_db,
            until_synced=until_synced,
            options=options,
            reset=reset,
            wait_seconds=timeout,
        )
    )
    write_json(json_out, result)
    if until_synced:
        if result.failing:
            fail(f"caught up, but writes still fail for {_failing_ids(result)}", 1)
        console.print("[green]synced[/]: the target has caught up with the source")


def _failing_ids(result: DbSyncResult) -> str:
    """`games: "id1", "id2" (E11000 ...)`, per collection, for the one-line error."""
    parts = []
    for name, coll in result.collections.items():
        if coll.failing:
            more = (
                f" and {coll.failing - len(coll.failing_ids)} more"
                if coll.failing > len(coll.failing_ids)
                else ""
            )
            parts.append(f"{name}: {', '.join(coll.failing_ids)}{more} ({coll.last_error})")
    return (
        f"{result.failing} _id(s): "
        + "; ".join(parts)
        + "; fix the target (e.g. a unique index the source does not have) and run again"
    )


@db_app.command()
def cutover(
    source: Annotated[str, typer.Option("--source", help="URI of the OLD database.")],
    target: Annotated[str, typer.Option("--target", help="URI of the NEW database.")],
    db: DbName = None,
    target_db: TargetDbName = None,
    service_url: Annotated[
        str | None,
        typer.Option(help="Old PaletAI's base URL: writes are stopped by its maintenance switch."),
    ] = None,
    admin_token: Annotated[
        str, typer.Option(envvar="ADMIN_TOKEN", help="Bearer token for /admin/maintenance.")
    ] = "",
    stop_command: Annotated[
        str | None,
        typer.Option(help="Shell command that stops writes, e.g. 'az webapp stop -g RG -n APP'."),
    ] = None,
    start_command: Annotated[
        str | None, typer.Option(help="Shell command that undoes --stop-command (on failure).")
    ] = None,
    reverse: Annotated[
        bool,
        typer.Option(help="Then sync NEW -> OLD until Ctrl-C, so a rollback loses nothing."),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before stopping writes.")] = False,
    catch_up_timeout: Annotated[float, typer.Option(help="Seconds to wait for the sync.")] = 600.0,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to drain once paused.")] = 120.0,
    verify_after_switch: Annotated[
        bool,
        typer.Option(
            "--verify-after/--no-verify-after",
            help="After READY, compare the whole database once more (outside the pause; "
            "writes the new side takes by then are set apart).",
        ),
    ] = True,
    json_out: JsonOut = None,
) -> None:
    """The guided switch: sync, verify, stop writes on the old side, drain, re-check, report
    the pause.

    The whole database is compared before the pause, while the sync runs; the pause only drains
    the change streams, re-checks the _ids changed since, and compares counts, so it does not
    grow with the data. --verify-after (default) compares everything again after READY.

    Writes are stopped with the old PaletAI's maintenance switch (--service-url, ADMIN_TOKEN),
    or with your own command (--stop-command) when the old side is not PaletAI. If the target
    does not verify identical, writes are resumed (maintenance off, or --start-command).
    Example:

        paletai db cutover --source "$OLD_DB" --target "$NEW_DB" \\
            --service-url https://old.example.net --reverse --json cutover.json
    """
    switch: WriteSwitch
    if service_url and stop_command:
        fail("give either --service-url or --stop-command, not both")
    if service_url:
        try:
            switch = MaintenanceSwitch(service_url, admin_token)
        except OpsError as exc:
            fail(str(exc))
    elif stop_command:
        switch = CommandSwitch(stop_command, start_command)
    else:
        fail("say how to stop writes: --service-url (PaletAI) or --stop-command")
    if not yes and not typer.confirm(
        f"Writes on the old side will be stopped ({switch.method}). Go on?", default=False
    ):
        raise typer.Exit(1)
    run(
        _cutover_main(
            source,
            target,
            switch,
            db=db,
            target_db=target_db,
            reverse=reverse,
            catch_up_timeout=catch_up_timeout,
            drain_timeout=drain_timeout,
            verify_after_switch=verify_after_switch,
            json_out=json_out,
        )
    )


async def _cutover_main(
    source: str,
    target: str,
    switch: WriteSwitch,
    *,
    db: str | None,
    target_db: str | None,
    reverse: bool,
    catch_up_timeout: float,
    drain_timeout: float,
    verify_after_switch: bool,
    json_out: Path | None,
) -> None:
    try:
        report, reverse_engine = await run_cutover(
            source,
            target,
            switch,
            db_name=db,
            target_db_name=target_db,
            reverse=reverse,
            catch_up_timeout=catch_up_timeout,
            drain_timeout=drain_timeout,
            step=lambda msg: console.print(f"[cyan]>[/] {msg}"),
        )
    except CutoverFailed as exc:
        if exc.verify is not None:
            print_verify(exc.verify)
        write_json(json_out, exc.report.to_result())
        raise

    def ready() -> None:
        write_json(json_out, report.to_result())
        console.print(
            f"[bold green]READY[/]: target verified identical; write pause "
            f"[bold]{report.write_pause_seconds:.2f} s[/] (stop {report.stop_call_seconds:.2f} s, "
            f"drain {report.drain_seconds:.2f} s, re-check of {report.ids_rechecked} changed "
            f"_ids and counts {report.verify_seconds:.2f} s; full verify before the pause "
            f"{report.pre_verify_seconds:.2f} s). Point the app at the new database now."
        )

    async def check_after() -> bool:
        if not verify_after_switch:
            return True
        console.print("[cyan]>[/] verifying the whole database again (outside the pause) ...")
        await verify_after(source, target, report, db_name=db, target_db_name=target_db)
        write_json(json_out, report.to_result())
        return _print_verify_after(report)

    if reverse_engine is None:
        ready()
        if not await check_after():
            raise typer.Exit(1)
        return

    async def follow() -> bool:
        async with syncing(reverse_engine) as engine:
            ready()
            console.print(
                "[cyan]>[/] reverse sync NEW -> OLD running: a rollback loses nothing. "
                "Ctrl-C to end."
            )
            same = await check_after()
            await engine.wait_stopped()
            return same

    same = await _with_signals(lambda: [reverse_engine], follow())
    console.print("reverse sync stopped")
    if not same:
        raise typer.Exit(1)


def _print_verify_after(report: CutoverReport) -> bool:
    """One line: identical after the switch, or the _ids that differ (then False)."""
    seconds = report.verify_after_seconds or 0.0
    if report.verify_after_identical:
        console.print(
            f"[green]verified again after the switch[/]: identical ({seconds:.2f} s; "
            f"{report.verify_after_explained} _ids written on the new side since set apart)"
        )
        return True
    listed = "; ".join(
        f"{n}: {', '.join(ids)}" for n, ids in report.verify_after_differences.items()
    )
    console.print(
        f"[bold red]error:[/] the full verify after the switch found documents that differ and "
        f"were not written on the new side since: {listed}; the old side is still stopped: "
        "roll back (point the app at the old database) or repair these, then run db verify"
    )
    return False


# --- paletai db repair likes: the logic is games.service.repair_likes -------------------------
repair_app = typer.Typer(help="Repair derived data from its source of truth.", no_args_is_help=True)
db_app.add_typer(repair_app, name="repair")


@repair_app.command("likes")
def repair_likes_command(
    uri: Annotated[
        str | None, typer.Option("--uri", envvar="DB_PATH", help="MongoDB URI (default: DB_PATH).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="DB_NAME", help="Database name (default: the URI's path)."),
    ] = None,
    all_games: Annotated[
        bool, typer.Option("--all", help="Recount every game, not only the ones marked stale.")
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """Recount `likes_count` from the likes: the games a crash may have left stale, or --all.

    Safe while the service runs. Example: `paletai db repair likes --all --json repair.json`
    """
    # Imported here so this command stays one self-contained block of this file.
    from pymongo.errors import ConnectionFailure, PyMongoError

    from paletai.db.client import database_name, describe_hosts, make_client
    from paletai.games.schemas import LikesRepair
    from paletai.games.service import repair_likes

    if not uri:
        fail("no database: set DB_PATH (or pass --uri) to the MongoDB URI")

    async def main() -> LikesRepair:
        try:
            client = make_client(uri)
            name = database_name(uri, db)
        except (PyMongoError, ValueError) as exc:
            raise OpsError(f"bad MongoDB URI (DB_PATH / --uri): {exc}") from None
        try:
            return await repair_likes(client[name], all_games=all_games)
        except ConnectionFailure as exc:
            raise OpsError(
                f"cannot reach MongoDB at {describe_hosts(uri)} ({type(exc).__name__}): "
                "check DB_PATH / --uri and that the server is up"
            ) from None
        except PyMongoError as exc:
            raise OpsError(f"likes repair failed in {name}: {str(exc)[:200]}") from None
        finally:
            await client.close()

    result = run(main())
    console.print(
        f"[green]likes repaired[/] ({result.scope}): {result.checked} games checked, "
        f"{result.fixed} fixed"
        + (f", {result.unsettled} still busy (run again)" if result.unsettled else "")
    )
    write_json(json_out, DbRepairLikesResult(**result.model_dump(exclude={"command"})))


if __name__ == "__main__":
    db_app()
