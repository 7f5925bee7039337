"""`paletai deploy decommission`: the checklist's Phase 7, one guarded stage at a time.

    stop          az webapp stop     after 24 hours on the new side (the checklist: 24-48 h)
    delete-app    az webapp delete   after 7 days
    delete-group  az group delete    after 30 days

A wait not over is refused unless `--force`. The delete stages also need a complete backup
(`db backup --to-blob`, judged by its manifest) of the old database that finished within the last
24 hours: deleting is the one step with no way back. Every stage asks for the resource group's
name typed back (or `--yes`); `--dry-run` prints the exact az lines and runs none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from paletai.ops.azure.az import AzCli
from paletai.ops.db.blob import BackupStore, StoredBackup
from paletai.ops.errors import OpsError
from paletai.ops.results import DeployDecommissionResult

FRESH_BACKUP = dt.timedelta(hours=24)


class Stage(StrEnum):
    STOP = "stop"
    DELETE_APP = "delete-app"
    DELETE_GROUP = "delete-group"


WAIT_DAYS = {Stage.STOP: 1, Stage.DELETE_APP: 7, Stage.DELETE_GROUP: 30}
WHAT = {
    Stage.STOP: "stop web app {app}",
    Stage.DELETE_APP: "DELETE web app {app}",
    Stage.DELETE_GROUP: "DELETE resource group {group} and everything in it",
}
MAKE_A_BACKUP = (
    "make one with `paletai db backup --uri OLD_DB_URI --to-blob CONN_OR_URL --container NAME`"
)


def az_args(stage: Stage, app: str, resource_group: str) -> list[str]:
    """The one az command of a stage (the checklist's own lines)."""
    if stage is Stage.STOP:
        return ["webapp", "stop", "--name", app, "--resource-group", resource_group]
    if stage is Stage.DELETE_APP:
        return ["webapp", "delete", "--name", app, "--resource-group", resource_group]
    return ["group", "delete", "--name", resource_group, "--yes"]


def parse_cutover(text: str, now: dt.datetime) -> dt.datetime:
    """The cutover time (ISO 8601; UTC when it names no zone); OpsError if unreadable or future."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise OpsError(
            f"--cutover-at {text!r} is not an ISO 8601 time; e.g. 2024-06-01T14:30:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    if moment > now:
        raise OpsError(
            f"--cutover-at {text} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ}); give the time "
            "the new side took over"
        )
    return moment


@dataclass
class Decommission:
    """One stage's request, and what was decided about it."""

    stage: Stage
    app: str
    resource_group: str
    cutover_at: dt.datetime
    now: dt.datetime
    force: bool = False
    dry_run: bool = False
    refused: str | None = None
    backup: StoredBackup | None = None
    backup_finished_at: str | None = None
    az_lines: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def days_since_cutover(self) -> float:
        return (self.now - self.cutover_at).total_seconds() / 86400

    @property
    def wait_days(self) -> int:
        return WAIT_DAYS[self.stage]

    @property
    def what(self) -> str:
        return WHAT[self.stage].format(app=self.app, group=self.resource_group)

    def check_wait(self) -> str | None:
        """Why the stage is too early, or None (also None with --force)."""
        if self.force or self.days_since_cutover >= self.wait_days:
            return None
        ready = self.cutover_at + dt.timedelta(days=self.wait_days)
        return (
            f"too early for {self.stage}: {self.days_since_cutover:.1f} days since the cutover, "
            f"the checklist waits {self.wait_days} (from {ready:%Y-%m-%d %H:%M} UTC); "
            "--force to go on anyway"
        )

    def check_backup(self, store: BackupStore | None, database: str | None) -> str | None:
        """Why there is no fresh complete backup to fall back on, or None."""
        if self.stage is Stage.STOP:
            return None
        if store is None:
            return (
                f"{self.stage} needs a complete backup of the old database from the last 24 hours: "
                f"say where with --backups CONN_OR_URL --container NAME, or {MAKE_A_BACKUP}"
            )
        complete = [b for b in store.list_backups(database) if b.complete]
        which = f" of database {database!r}" if database else ""
        if not complete:
            return f"no complete backup{which} in {store.url}; {MAKE_A_BACKUP}"
        newest = complete[0]
        manifest = store.read_manifest(newest.name)
        finished = dt.datetime.fromisoformat(manifest.finished_at)
        if self.now - finished > FRESH_BACKUP:
            hours = (self.now - finished).total_seconds() / 3600
            return (
                f"the newest complete backup{which}, {newest.name}, finished {hours:.0f} hours "
                f"ago (more than 24); {MAKE_A_BACKUP}"
            )
        self.backup = newest
        self.backup_finished_at = manifest.finished_at
        return None

    def run(self, az: AzCli) -> None:
        args = az_args(self.stage, self.app, self.resource_group)
        self.az_lines.append(az.command_line(args))
        az.run(*args)
        self.done = not self.dry_run

    def result(self) -> DeployDecommissionResult:
        return DeployDecommissionResult(
            stage=self.stage.value,
            app=self.app,
            resource_group=self.resource_group,
            cutover_at=self.cutover_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            at=self.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            days_since_cutover=round(self.days_since_cutover, 2),
            wait_days=self.wait_days,
            forced=self.force,
            dry_run=self.dry_run,
            done=self.done,
            refused=self.refused,
            backup=self.backup.name if self.backup else None,
            backup_finished_at=self.backup_finished_at,
            az_lines=self.az_lines,
        )
