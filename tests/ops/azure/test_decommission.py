"""`deploy decommission`: the waits, the fresh-backup guard (manifests in Azurite), the typed
resource group name, dry runs; a refused stage never reaches `az` (the fake az's log)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner

from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.db.blob import MANIFEST, BackupManifest, folder_name, iso
from paletai.ops.results import DeployDecommissionResult
from tests.fixtures.fake_az import FakeAz

runner = CliRunner()
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
OLD_APP, OLD_GROUP = "emailgeniebackend", "huddleup"
DELETES = ("webapp delete", "group delete")


def _store_backup(conn: str, container: str, finished: dt.datetime, *, complete: bool) -> str:
    """A backup folder of database `paletai` as `db backup --to-blob` leaves it (its manifest
    carries the times the guard reads); without a manifest when not `complete`."""
    started = finished - dt.timedelta(minutes=5)
    name = folder_name("paletai", started)
    client = BlobServiceClient.from_connection_string(conn).get_container_client(container)
    if not client.exists():
        client.create_container()
    client.upload_blob(f"{name}/prelude.json", b"{}", overwrite=True)
    if complete:
        manifest = BackupManifest(
            name=name,
            database="paletai",
            source="old-db.example.net:27017",
            started_at=iso(started),
            finished_at=iso(finished),
            paletai_version="test",
            collections=[],
            files=[],
        )
        client.upload_blob(f"{name}/{MANIFEST}", manifest.model_dump_json().encode())
    return name


def _args(stage: str, days_ago: float, *extra: str) -> list[str]:
    cutover = iso(NOW - dt.timedelta(days=days_ago))
    head = ["decommission", "--stage", stage, "--app", OLD_APP, "-g", OLD_GROUP]
    return [*head, "--cutover-at", cutover, *extra]


def _no_deletes(fake_az: FakeAz) -> None:
    for command in DELETES:
        assert fake_az.calls_of(command) == []


@pytest.mark.parametrize(
    ("stage", "days"), [("stop", 0.5), ("delete-app", 6.5), ("delete-group", 29)]
)
def test_refuses_before_the_checklists_wait(
    fake_az: FakeAz, azurite: str, container_name: str, stage: str, days: float, tmp_path: Path
) -> None:
    _store_backup(azurite, container_name, NOW - dt.timedelta(hours=1), complete=True)
    out = tmp_path / "decommission.json"
    done = runner.invoke(
        deploy_app,
        _args(stage, days, "--backups", azurite, "--container", container_name, "--yes")
        + ["--json", str(out)],
    )
    assert done.exit_code == 1, done.output
    assert f"refused: too early for {stage}" in done.stderr
    assert "--force" in done.stderr
    assert fake_az.argvs() == []
    result = DeployDecommissionResult.model_validate_json(out.read_text())
    assert not result.done
    assert result.refused is not None
    assert result.refused.startswith("too early")


def test_refuses_a_delete_without_a_fresh_complete_backup(
    fake_az: FakeAz, azurite: str, container_name: str
) -> None:
    base = _args("delete-group", 40, "--yes", "--force")
    # No --backups at all.
    done = runner.invoke(deploy_app, base)
    assert done.exit_code == 1
    assert "needs a complete backup" in done.stderr
    assert "paletai db backup --uri" in done.stderr  # which command makes one
    # A complete one from 30 hours ago, and a fresh one that never finished (no manifest).
    stale = _store_backup(azurite, container_name, NOW - dt.timedelta(hours=30), complete=True)
    _store_backup(azurite, container_name, NOW - dt.timedelta(minutes=10), complete=False)
    where = ["--backups", azurite, "--container", container_name]
    done = runner.invoke(deploy_app, [*base, *where])
    assert done.exit_code == 1, done.output
    assert f"the newest complete backup, {stale}, finished 30 hours ago" in done.stderr
    # Backups of another database do not count.
    _store_backup(azurite, container_name, NOW - dt.timedelta(hours=1), complete=True)
    done = runner.invoke(deploy_app, [*base, *where, "--db", "paletai_old"])
    assert done.exit_code == 1
    assert "no complete backup of database 'paletai_old'" in done.stderr
    _no_deletes(fake_az)
    assert fake_az.argvs() == []


def test_refuses_a_wrongly_typed_resource_group_name(
    fake_az: FakeAz, azurite: str, container_name: str
) -> None:
    _store_backup(azurite, container_name, NOW - dt.timedelta(hours=2), complete=True)
    args = _args("delete-app", 8, "--backups", azurite, "--container", container_name)
    done = runner.invoke(deploy_app, args, input="huddle-up\n")
    assert done.exit_code == 1, done.output
    assert "DELETE web app emailgeniebackend" in done.output  # the question says what happens
    assert "refused: the name typed ('huddle-up') is not 'huddleup'" in done.stderr
    _no_deletes(fake_az)


def test_runs_the_stage_once_the_name_is_typed_back(
    fake_az: FakeAz, azurite: str, container_name: str, tmp_path: Path
) -> None:
    fresh = _store_backup(azurite, container_name, NOW - dt.timedelta(hours=2), complete=True)
    out = tmp_path / "decommission.json"
    args = _args("delete-group", 31, "--backups", azurite, "--container", container_name)
    done = runner.invoke(deploy_app, [*args, "--json", str(out)], input="huddleup\n")
    assert done.exit_code == 0, done.output
    assert fake_az.calls_of("group delete") == [
        ["group", "delete", "--name", OLD_GROUP, "--yes", "--output", "json"]
    ]
    assert fake_az.calls_of("webapp delete") == []
    result = DeployDecommissionResult.model_validate_json(out.read_text())
    assert result.done
    assert result.backup == fresh
    assert result.days_since_cutover >= 31
    assert result.az_lines == ["az group delete --name huddleup --yes --output json"]
    # A stop needs no backup; --yes skips the question.
    done = runner.invoke(deploy_app, [*_args("stop", 2), "--yes"])
    assert done.exit_code == 0, done.output
    assert fake_az.calls_of("webapp stop") == [
        ["webapp", "stop", "--name", OLD_APP, "--resource-group", OLD_GROUP, "--output", "json"]
    ]


def test_dry_run_prints_the_exact_lines_and_runs_nothing(
    fake_az: FakeAz, azurite: str, container_name: str, tmp_path: Path
) -> None:
    _store_backup(azurite, container_name, NOW - dt.timedelta(hours=3), complete=True)
    where = ["--backups", azurite, "--container", container_name]
    lines = {}
    for stage in ("stop", "delete-app", "delete-group"):
        out = tmp_path / f"{stage}.json"
        done = runner.invoke(
            deploy_app,
            [*_args(stage, 1, *where, "--force", "--dry-run"), "--json", str(out)],
        )
        assert done.exit_code == 0, done.output
        lines[stage] = done.stdout.strip()
        data = json.loads(out.read_text())
        assert data["dry_run"] is True
        assert data["done"] is False
        assert data["forced"] is True
    assert lines == {
        "stop": "az webapp stop --name emailgeniebackend --resource-group huddleup --output json",
        "delete-app": "az webapp delete --name emailgeniebackend --resource-group huddleup "
        "--output json",
        "delete-group": "az group delete --name huddleup --yes --output json",
    }
    assert fake_az.argvs() == []


@pytest.mark.parametrize(
    ("cutover", "message"),
    [("last tuesday", "not an ISO 8601 time"), ("2999-01-01T00:00:00Z", "in the future")],
)
def test_a_bad_cutover_time_is_one_line(fake_az: FakeAz, cutover: str, message: str) -> None:
    done = runner.invoke(
        deploy_app,
        ["decommission", "--stage", "stop", "--app", "a", "-g", "g", "--cutover-at", cutover],
    )
    assert done.exit_code == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert fake_az.argvs() == []
