"""The `--to-blob` / `--from-blob` branches of `paletai db backup|restore` (logic in blob.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.markup import escape

from paletai.ops.cli import err as console
from paletai.ops.cli import fail, run, write_json
from paletai.ops.db.blob import (
    BackupStore,
    StoredBackup,
    apply_retention,
    backup_to_blob,
    choose_backup,
    restore_from_blob,
    trial_restore,
)
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.progress import collection_progress
from paletai.ops.errors import OpsError

T = TypeVar("T")


def _sync(call: Callable[[], T]) -> T:
    """Run a blocking store call; an OpsError ends the command with one line."""
    try:
        return call()
    except OpsError as exc:
        fail(str(exc))


def _open(location: str, container: str | None, option: str) -> BackupStore:
    if not container:
        fail(f"{option} needs --container NAME (the blob container that holds the backups)")
    return _sync(lambda: BackupStore.open(location, container))


def check_retention(keep_daily: int | None, keep_weekly: int | None) -> tuple[int, int] | None:
    """The retention asked for, or None; refuses a policy that would keep nothing."""
    if keep_daily is None and keep_weekly is None:
        return None
    daily, weekly = keep_daily or 0, keep_weekly or 0
    if daily < 0 or weekly < 0:
        fail("--keep-daily and --keep-weekly count backups: give 0 or more")
    if daily == 0 and weekly == 0:
        fail("--keep-daily 0 --keep-weekly 0 would delete every backup, this one too; keep one")
    return daily, weekly


def backup_to_blob_command(
    uri: str,
    location: str,
    container: str | None,
    *,
    db: str | None,
    keep_daily: int | None,
    keep_weekly: int | None,
    test_restore: str | None,
    json_out: Path | None,
) -> None:
    """`db backup --to-blob`: the backup, then retention, then the test restore."""
    retention = check_retention(keep_daily, keep_weekly)
    store = _open(location, container, "--to-blob")
    try:
        with collection_progress() as progress:
            done = run(backup_to_blob(uri, store, db_name=db, progress=progress))
        result = done.result.to_result()
        result.blob = done.figures
        mb = done.figures.blob_bytes / 1e6
        console.print(
            f"[green]backed up[/] {result.database}: {len(result.collections)} collections, "
            f"{result.documents} documents -> {escape(done.figures.url)}/{done.figures.name}/ "
            f"({done.figures.blobs} blobs, {mb:.1f} MB gzip, manifest.json last) "
            f"in {result.seconds:.1f} s"
        )
        if retention is not None:

            def said(backup: StoredBackup, complete: bool) -> None:
                kind = "" if complete else " (incomplete: no manifest, older than a day)"
                console.print(f"[yellow]deleted[/] {backup.name}{kind}")

            daily, weekly = retention
            result.retention = _sync(
                lambda: apply_retention(
                    store, result.database, keep_daily=daily, keep_weekly=weekly, deleted=said
                )
            )
            gone = len(result.retention.deleted) + len(result.retention.deleted_incomplete)
            console.print(
                f"retention (newest per day for {daily} days, per ISO week for {weekly} weeks): "
                f"{len(result.retention.kept)} kept, {gone} deleted"
            )
        if test_restore is not None:
            with collection_progress() as progress:
                trial = run(
                    trial_restore(
                        uri,
                        result.database,
                        store,
                        done.figures.name,
                        test_restore,
                        progress=progress,
                    )
                )
            result.test_restore = trial
            verdict = "[green]test restore passed[/]" if trial.ok else "[red]test restore FAILED[/]"
            differ = (
                "identical to the source"
                if trial.verify_identical
                else f"{trial.documents_differing} documents differ from the source now "
                "(writes since the backup)"
            )
            console.print(
                f"{verdict}: {trial.restored_documents} documents into {trial.database} on "
                f"{trial.host}, sha256 and counts matched the manifest: "
                f"{'yes' if trial.matched_manifest else 'no'}; {differ}; scratch database "
                f"{'dropped' if trial.dropped else 'NOT dropped'}"
                + (f"; {escape(trial.problem)}" if trial.problem else "")
            )
        write_json(json_out, result)
        if result.test_restore is not None and not result.test_restore.ok:
            raise typer.Exit(1)
    finally:
        store.close()


def restore_from_blob_command(
    uri: str,
    location: str,
    container: str | None,
    *,
    latest: bool,
    name: str | None,
    db: str | None,
    drop: bool,
    force: bool,
    mapper: NamespaceMapper,
    json_out: Path | None,
) -> None:
    """`db restore --from-blob`: pick the backup, stream it in, check it against its manifest."""
    if latest == (name is not None):
        fail("--from-blob needs exactly one of --latest or --name BACKUP")
    store = _open(location, container, "--from-blob")
    try:
        backup = _sync(lambda: choose_backup(store, name=name, latest=latest, database=db))
        console.print(f"restoring {backup} from {escape(store.url)}")
        with collection_progress() as progress:
            done = run(
                restore_from_blob(
                    uri, store, backup, drop=drop, force=force, mapper=mapper, progress=progress
                )
            )
    finally:
        store.close()
    result = done.result
    for item in result.collections:
        console.print(
            ("[green]ok[/] " if not item.errors else "[red]errors[/] ")
            + f"{item.source_namespace} -> {item.namespace}: {item.inserted} inserted, "
            f"{item.duplicates} duplicates, {item.errors} errors, {item.indexes} indexes"
        )
    console.print(
        f"restored {result.total('inserted')} documents of {backup} in {result.seconds:.1f} s; "
        "every blob matched the manifest (sha256, size, document counts)"
    )
    out = result.to_result()
    out.from_blob = backup
    write_json(json_out, out)
    if not result.ok:
        raise typer.Exit(1)
