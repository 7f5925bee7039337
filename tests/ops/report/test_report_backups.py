"""The report's backup items (Pre-Migration, Post-Migration: Backup Strategy) and Phase 7, from
`db backup --to-blob` and `deploy decommission` results."""

from __future__ import annotations

from pathlib import Path

from paletai.ops.checks import names
from paletai.ops.report.checklist import Item, Report, build_report
from paletai.ops.results import (
    BlobBackupFigures,
    CheckRecord,
    DbBackupResult,
    DbRestoreResult,
    DeployDecommissionResult,
    DumpedCollection,
    MigrateInsightsResult,
    OpsResult,
    RestoreTestFigures,
    RetentionFigures,
)
from tests.ops.report.fixtures import write

FOLDER = "paletai-paletai-20240601T031700Z"


def blob_backup(*, trial_ok: bool = True) -> DbBackupResult:
    return DbBackupResult(
        database="paletai",
        directory=f"http://127.0.0.1:10000/devstoreaccount1/db-backups/{FOLDER}",
        collections=[
            DumpedCollection(name="games", documents=1200, bytes=2_400_000, seconds=1.0),
            DumpedCollection(name="users", documents=300, bytes=90_000, seconds=0.1),
        ],
        documents=1500,
        bytes=2_490_000,
        seconds=1.2,
        blob=BlobBackupFigures(
            url="http://127.0.0.1:10000/devstoreaccount1/db-backups",
            container="db-backups",
            name=FOLDER,
            started_at="2024-06-01T03:17:00Z",
            finished_at="2024-06-01T03:17:02Z",
            blobs=6,
            blob_bytes=800_000,
        ),
        retention=RetentionFigures(
            keep_daily=7,
            keep_weekly=4,
            kept=[FOLDER],
            deleted=["paletai-paletai-20240420T031700Z"],
        ),
        test_restore=RestoreTestFigures(
            host="127.0.0.1:27018",
            database="paletai_restoretest_20240601031702",
            restored_documents=1500 if trial_ok else 1200,
            matched_manifest=trial_ok,
            verify_identical=trial_ok,
            documents_differing=0 if trial_ok else 300,
            dropped=True,
            ok=trial_ok,
            problem=None if trial_ok else "some documents could not be inserted",
        ),
    )


def decommission(stage: str, *, done: bool, **extra: object) -> DeployDecommissionResult:
    lines = {
        "stop": "az webapp stop --name old --resource-group rg --output json",
        "delete-app": "az webapp delete --name old --resource-group rg --output json",
        "delete-group": "az group delete --name rg --yes --output json",
    }
    values: dict[str, object] = {
        "stage": stage,
        "app": "old",
        "resource_group": "rg",
        "cutover_at": "2024-06-01T14:30:00Z",
        "at": "2024-07-02T09:00:00Z",
        "days_since_cutover": 30.8,
        "wait_days": {"stop": 1, "delete-app": 7, "delete-group": 30}[stage],
        "done": done,
        "az_lines": [lines[stage]] if done else [],
        **extra,
    }
    return DeployDecommissionResult.model_validate(values)


def _report(tmp_path: Path, files: dict[str, OpsResult]) -> Report:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return build_report(write(tmp_path, files))


def _item(report: Report, section: str, text: str) -> Item:
    [found] = [s for s in report.sections if s.title == section]
    [item] = [i for i in found.items if i.text == text]
    return item


def test_backup_strategy_and_preparation_from_a_blob_backup(tmp_path: Path) -> None:
    report = _report(tmp_path, {"db-backup.json": blob_backup()})
    section = "Post-Migration: Backup Strategy"
    automated = _item(report, section, "Set up automated MongoDB backups")
    assert automated.status == "pass"
    assert ".github/workflows/backup.yml" in automated.evidence
    assert "cron `17 3 * * *`" in automated.evidence
    assert FOLDER in automated.evidence
    documented = _item(report, section, "Documented restore procedure")
    assert documented.status == "pass"
    assert 'docs/db-operations.md`, section "Restoring a backup from Blob Storage"' in (
        documented.evidence
    )
    tested = _item(report, section, "Tested backup restoration")
    assert tested.status == "pass"
    assert "1,500 documents restored into scratch database paletai_restoretest_" in tested.evidence
    assert "scratch dropped" in tested.evidence
    retention = _item(report, section, "Configured retention policy")
    assert retention.status == "pass"
    assert "per day for 7 days and per ISO week for 4 weeks: 1 kept, 1 deleted" in (
        retention.evidence
    )
    prep = "Pre-Migration: Database Preparation"
    created = _item(report, prep, "Full MongoDB backup created")
    assert created.status == "pass"
    assert "paletai: 2 collections, 1,500 documents" in created.evidence
    assert _item(report, prep, "Backup verified (can restore to test instance)").status == "pass"


def test_a_dry_run_or_partial_backup_is_not_a_full_backup(tmp_path: Path) -> None:
    prep = "Pre-Migration: Database Preparation"
    text = "Full MongoDB backup created"
    dry = blob_backup().model_copy(update={"dry_run": True, "blob": None, "test_restore": None})
    item = _item(_report(tmp_path / "dry", {"db-backup.json": dry}), prep, text)
    assert item.status == "none"
    assert item.evidence == "`db backup --dry-run` only: nothing was written"
    part = blob_backup().model_copy(update={"collection": "games", "query": '{"likes": 1}'})
    item = _item(_report(tmp_path / "part", {"db-backup.json": part}), prep, text)
    assert item.status == "none"
    assert 'partial (--collection games, --query {"likes": 1})' in item.evidence
    excluded = blob_backup().model_copy(update={"ns_exclude": ["paletai.likes"]})
    item = _item(_report(tmp_path / "ex", {"db-backup.json": excluded}), prep, text)
    assert "--ns-exclude paletai.likes" in item.evidence


def test_a_failed_test_restore_fails_both_items(tmp_path: Path) -> None:
    report = _report(tmp_path, {"db-backup.json": blob_backup(trial_ok=False)})
    tested = _item(report, "Post-Migration: Backup Strategy", "Tested backup restoration")
    assert tested.status == "fail"
    assert "some documents could not be inserted" in tested.evidence
    verified = _item(
        report,
        "Pre-Migration: Database Preparation",
        "Backup verified (can restore to test instance)",
    )
    assert verified.status == "fail"
    assert not report.ok


def test_without_results_nothing_is_claimed(tmp_path: Path) -> None:
    report = _report(tmp_path, {})
    section = "Post-Migration: Backup Strategy"
    for text in (
        "Set up automated MongoDB backups",
        "Documented restore procedure",
        "Tested backup restoration",
        "Configured retention policy",
    ):
        assert _item(report, section, text).status == "none"
    phase7 = "Phase 7: Old Environment Decommission"
    stages = ("Stopped old app service", "Deleted old app service", "Deleted old resource group")
    for text in stages:
        item = _item(report, phase7, text)
        assert item.status == "none"
        assert "no `deploy decommission --stage" in item.evidence
    stable = _item(report, phase7, "Confirmed new environment is stable")
    assert stable.status == "manual"
    assert "24-48 hours" in stable.evidence


def test_a_directory_restore_also_verifies_the_backup(tmp_path: Path) -> None:
    plain = blob_backup().model_copy(update={"blob": None, "test_restore": None})
    restore = DbRestoreResult(ok=True, collections=[], from_blob=FOLDER)
    report = _report(tmp_path, {"a-backup.json": plain, "b-restore.json": restore})
    prep = "Pre-Migration: Database Preparation"
    verified = _item(report, prep, "Backup verified (can restore to test instance)")
    assert verified.status == "pass"
    assert f"`db restore` of blob backup {FOLDER}" in verified.evidence
    automated = _item(report, "Post-Migration: Backup Strategy", "Set up automated MongoDB backups")
    assert automated.status == "none"  # a backup into a directory is not the scheduled one


def test_phase_7_from_every_decommission_result(tmp_path: Path) -> None:
    files: dict[str, OpsResult] = {
        "1-stop.json": decommission("stop", done=True, days_since_cutover=2.0),
        "2-delete-app.json": decommission(
            "delete-app", done=False, refused="too early for delete-app: 3.0 days since the cutover"
        ),
        "3-delete-group.json": decommission(
            "delete-group",
            done=True,
            forced=True,
            backup=FOLDER,
            backup_finished_at="2024-07-02T03:17:02Z",
        ),
    }
    report = _report(tmp_path, files)
    phase7 = "Phase 7: Old Environment Decommission"
    stopped = _item(report, phase7, "Stopped old app service")
    assert stopped.status == "pass"
    assert "`az webapp stop --name old --resource-group rg --output json`" in stopped.evidence
    assert "2.0 days after the cutover" in stopped.evidence
    deleted_app = _item(report, phase7, "Deleted old app service")
    assert deleted_app.status == "none"
    assert "refused: too early for delete-app" in deleted_app.evidence
    group = _item(report, phase7, "Deleted old resource group")
    assert group.status == "pass"
    assert "forced before the checklist's wait" in group.evidence
    final = _item(report, phase7, "Final backup of old environment")
    assert final.status == "pass"
    assert FOLDER in final.evidence
    assert "Phase 7 (decommission)" not in report.markdown()


def _insights(minutes: int, *, errors_ok: bool = True) -> MigrateInsightsResult:
    checks = [
        CheckRecord(name=names.INSIGHTS_REQUESTS, ok=True, seconds=0.4, detail="52,113 requests"),
        CheckRecord(
            name=names.INSIGHTS_NO_ERRORS,
            ok=errors_ok,
            seconds=0.3,
            detail="0 failed, 0 exceptions" if errors_ok else "41 5xx, 12 exceptions",
        ),
        CheckRecord(
            name=names.INSIGHTS_RESPONSE_TIME + "2 s", ok=True, seconds=0.3, detail="p95 310 ms"
        ),
    ]
    return MigrateInsightsResult(
        target="paletai-new",
        ok=errors_ok,
        started_at="2024-06-02T15:00:00Z",
        checks=checks,
        app="paletai-new",
        resource_group="rg-paletai-prod",
        minutes=minutes,
    )


def test_stability_from_a_days_insights_and_not_from_a_short_window(tmp_path: Path) -> None:
    phase7 = "Phase 7: Old Environment Decommission"
    report = _report(tmp_path / "day", {"insights.json": _insights(1440)})
    assert _item(report, phase7, "Confirmed new environment is stable").status == "pass"
    metrics = _item(report, phase7, "Metrics look normal")
    assert metrics.status == "pass"
    assert "0 failed, 0 exceptions" in metrics.evidence
    report = _report(tmp_path / "bad", {"insights.json": _insights(1440, errors_ok=False)})
    assert _item(report, phase7, "Metrics look normal").status == "fail"
    report = _report(tmp_path / "short", {"insights.json": _insights(30)})
    stable = _item(report, phase7, "Confirmed new environment is stable")
    assert stable.status == "manual"
    assert "covered 30 minutes" in stable.evidence
