"""The report's Pre-Migration sections, from a `migrate preflight` result."""

from __future__ import annotations

from pathlib import Path

from paletai.ops.checks import names
from paletai.ops.report.checklist import build_report
from paletai.ops.results import CheckRecord, MigratePreflightResult
from tests.ops.report import fixtures

TENANT = "11111111-1111-1111-1111-111111111111"
SUB = "22222222-2222-2222-2222-222222222222"


def _check(name: str, detail: str, ok: bool = True) -> CheckRecord:
    return CheckRecord(name=name, ok=ok, seconds=0.2, detail=detail)


def migrate_preflight(**changes: object) -> MigratePreflightResult:
    ai = names.PREFLIGHT_AI_KEY
    result = MigratePreflightResult(
        target=f"subscription {SUB}",
        ok=True,
        started_at="2026-11-22T09:00:00+00:00",
        seconds=4.0,
        checks=[
            _check(names.PREFLIGHT_AZ_SIGNED_IN, f"as ops@contoso.example (user), tenant {TENANT}"),
            _check(names.PREFLIGHT_AZ_SUBSCRIPTION, f"PaletAI Production ({SUB}), Enabled"),
            _check(names.PREFLIGHT_AZ_TENANT, f"{TENANT} (subscription {SUB})"),
            _check(names.PREFLIGHT_AZ_ROLE, f"Contributor at /subscriptions/{SUB}"),
            _check(
                names.PREFLIGHT_MONGODB,
                "old.example.net:27017: MongoDB 7.0.12; database paletai: 6 collections, "
                "16,000 documents, 48.0 MB of data",
            ),
            _check(
                names.PREFLIGHT_CHANGE_STREAMS,
                "a change stream opened on games (replica set rs0): `db sync` possible",
            ),
            _check(ai + "openai", "key accepted by api.openai.com: 90 models listed"),
            _check(ai + "azure-openai", "not configured (AZURE_OPENAI_ENDPOINT unset)"),
            _check(ai + "anthropic", "not configured (ANTHROPIC_API_KEY unset)"),
            _check(names.PREFLIGHT_ONESIGNAL, "app 4f1c: the REST API key reads its messages"),
            _check(names.PREFLIGHT_STORAGE, "account old answers; container game-images: blob"),
        ],
        tenant=TENANT,
        subscription=SUB,
        account="ops@contoso.example",
        account_type="user",
        mongodb_hosts="old.example.net:27017",
        mongodb_version="7.0.12",
        mongodb_data_bytes=48 * 1024 * 1024,
        change_streams=True,
        ai_provider="openai",
    )
    return result.model_copy(update=changes)


def _markdown(tmp_path: Path, result: MigratePreflightResult | None) -> str:
    files = fixtures.all_results()
    if result is not None:
        files["preflight.json"] = result
    return build_report(fixtures.write(tmp_path / "results", files)).markdown()


def _line(markdown: str, text: str) -> str:
    lines = [line for line in markdown.splitlines() if text in line]
    assert lines, f"no line with {text!r} in:\n{markdown}"
    return lines[0]


def test_pre_migration_comes_first_and_is_filled_from_preflight(tmp_path: Path) -> None:
    markdown = _markdown(tmp_path, migrate_preflight())
    titles = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert titles[:5] == [
        "## Pre-Migration: Information Gathering",
        "## Pre-Migration: Old Environment Documentation",
        "## Pre-Migration: Database Preparation",
        "## Pre-Migration: Testing Preparation",
        "## Pre-Migration: Communication",
    ]
    assert "`preflight.json`" in markdown
    assert _line(markdown, f"Collected new Azure Tenant ID: {TENANT}").startswith("- [x]")
    assert _line(markdown, f"Collected new Azure Subscription ID: {SUB}").startswith("- [x]")
    role = _line(markdown, "Verified Contributor/Owner access")
    assert role.startswith("- [x]")
    assert f"Contributor at /subscriptions/{SUB}" in role
    assert "MongoDB 7.0.12" in _line(markdown, "- [x] MongoDB connection string ready")
    ai = _line(markdown, "AI provider API keys ready")
    assert ai.startswith("- [x]")
    assert "openai accepted (in force: openai)" in ai
    assert _line(markdown, "OneSignal credentials ready").startswith("- [x]")
    strategy = _line(markdown, "Decided on migration strategy")
    assert strategy.startswith("- [-]")
    assert "continuous sync (`db sync`, zero downtime) is possible" in strategy
    assert "**Result: all passed:" in markdown


def test_connectivity_from_the_new_region_is_measured_only_there(tmp_path: Path) -> None:
    outside = _line(_markdown(tmp_path / "a", migrate_preflight()), "from new Azure region")
    assert outside.startswith("- [ ]")
    assert "ran outside Azure App Service" in outside
    there = migrate_preflight(region="West US 3", site="paletai-new")
    inside = _line(_markdown(tmp_path / "b", there), "from new Azure region")
    assert inside.startswith("- [x]")
    assert "from App Service paletai-new in West US 3: old.example.net:27017" in inside


def test_failures_and_missing_keys_are_failures(tmp_path: Path) -> None:
    data = migrate_preflight(change_streams=False, region="West US 3")
    data.checks[3] = _check(names.PREFLIGHT_AZ_ROLE, "neither Contributor nor Owner", ok=False)
    data.checks[4] = _check(names.PREFLIGHT_MONGODB, "cannot reach the given MongoDB", ok=False)
    markdown = _markdown(tmp_path / "a", data)
    assert _line(markdown, "Verified Contributor/Owner access").startswith("- [!]")
    assert _line(markdown, "MongoDB connection string ready").startswith("- [!]")
    assert _line(markdown, "from new Azure region").startswith("- [!]")
    assert "backup/restore with a write pause" in _line(markdown, "Decided on migration strategy")
    # No AI key at all: the offline templates would write the games.
    offline = migrate_preflight(ai_provider="offline")
    offline.checks[6] = _check(names.PREFLIGHT_AI_KEY + "openai", "not configured (…)")
    ai = _line(_markdown(tmp_path / "b", offline), "AI provider API keys ready")
    assert ai.startswith("- [!]")
    assert "no AI key configured (provider in force: offline)" in ai


def test_without_preflight_nothing_is_claimed(tmp_path: Path) -> None:
    markdown = _markdown(tmp_path, None)
    for text in (
        "Collected new Azure Tenant ID",
        "Verified Contributor/Owner access",
        "MongoDB connection string ready",
        "AI provider API keys ready",
        "Tested MongoDB connectivity from new Azure region",
    ):
        assert _line(markdown, text).startswith("- [ ]"), text
    assert "no `migrate preflight` result" in _line(markdown, "MongoDB connection string ready")
    # What no command measures is [-] with its reason, whatever the results.
    for text in (
        "Test user accounts identified",
        "Test game prompts prepared",
        "Maintenance window scheduled",
        "Users notified of potential downtime",
        "Status page prepared",
        "Team members briefed",
    ):
        assert _line(markdown, text).startswith("- [-]"), text
    scripts = _line(markdown, "API test scripts ready")
    assert "`paletai migrate check URL`" in scripts
    assert "`migrate check URL` checks URL/health" in _line(markdown, "Health check URLs")


def test_az_items_not_run_say_why(tmp_path: Path) -> None:
    signed_out = migrate_preflight(account=None)
    signed_out.checks[:4] = [
        _check(
            names.PREFLIGHT_AZ_SIGNED_IN,
            f"az is not signed in: run `az login --tenant {TENANT}`",
            ok=False,
        )
    ]
    markdown = _markdown(tmp_path / "a", signed_out)
    for text in ("Azure Tenant ID", "Azure Subscription ID", "Contributor/Owner access"):
        item = _line(markdown, text)
        assert item.startswith("- [!]"), item
        assert f"not checked: `{names.PREFLIGHT_AZ_SIGNED_IN}` failed: az is not signed in" in item
    # Run without --tenant/--subscription: nothing measured, and the report says so.
    no_azure = migrate_preflight(tenant=None, subscription=None)
    del no_azure.checks[:4]
    markdown = _markdown(tmp_path / "b", no_azure)
    assert _line(markdown, "Azure Tenant ID").endswith("`migrate preflight` ran without --tenant")
    role = _line(markdown, "Contributor/Owner access")
    assert role == (
        "- [ ] Verified Contributor/Owner access to new subscription — "
        "`migrate preflight` ran without --subscription"
    )
