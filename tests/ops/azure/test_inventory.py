"""`paletai migrate inventory` against the fake az: the old app documented item by item, with
no credential on screen or in its --json."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from paletai.cli import app
from paletai.ops.azure.inventory import mongodb_hosts
from paletai.ops.checks import names
from tests.fixtures.fake_az import FakeAz
from tests.ops.azure.answers import (
    APP,
    APP_ID,
    APP_NOT_FOUND,
    DB_PASSWORD,
    GROUP,
    NOT_LOGGED_IN,
    PLAN_ID,
    SECRETS,
    query_answer,
    with_app,
)
from tests.ops.test_results import read_result

runner = CliRunner()


def daily(*days: tuple[str, int, int]) -> dict[str, Any]:
    rows = [[f"{day}T00:00:00Z", requests, failed] for day, requests, failed in days]
    return query_answer(["day", "requests", "failed"], rows)


def inventory(tmp_path: Path, *extra: str) -> tuple[Any, dict[str, Any] | None]:
    out = tmp_path / "inventory.json"
    args = ["migrate", "inventory", "--app", APP, "-g", GROUP, "--json", str(out), *extra]
    result = runner.invoke(app, args)
    return result, read_result(out, "migrate inventory") if out.exists() else None


def test_inventory_documents_the_old_environment(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond(
        "rest",
        daily(("2026-11-25", 1000, 4), ("2026-11-26", 1400, 6), ("2026-11-27", 1100, 0)),
    )
    settings_file = tmp_path / "old-app-settings.json"
    result, data = inventory(tmp_path, "--days", "7", "--out", str(settings_file))
    assert result.exit_code == 0, result.output
    assert data is not None
    assert data["ok"] is True
    checks = {c["name"]: c["detail"] for c in data["checks"]}
    assert list(checks) == [
        names.INVENTORY_SETTINGS,
        names.INVENTORY_DOMAINS,
        names.INVENTORY_PLAN,
        names.INVENTORY_TRAFFIC,
        names.INVENTORY_INTEGRATIONS,
    ]
    # Settings: shown masked, written in clear to a 0600 file the way `settings export` does.
    shown = {s["name"]: s["value"] for s in data["settings"]}
    assert shown["DB_PATH"] == "********"
    assert shown["WEBSITES_PORT"] == "8000"
    assert checks[names.INVENTORY_SETTINGS].startswith("10 settings (5 secret, masked)")
    written = json.loads(settings_file.read_text())
    assert DB_PASSWORD in next(s["value"] for s in written if s["name"] == "DB_PATH")
    assert stat.S_IMODE(settings_file.stat().st_mode) == 0o600
    assert data["settings_file"] == str(settings_file)
    # Domains and TLS: the custom one with its certificate; another app's certificate left out.
    assert checks[names.INVENTORY_DOMAINS] == (
        "api.paletai.com (SniEnabled, certificate api.paletai.com expires "
        "2027-03-01T00:00:00+00:00)"
    )
    assert [c["subject_name"] for c in data["certificates"]] == ["api.paletai.com"]
    assert [h["custom"] for h in data["hostnames"]] == [False, True]
    # Plan: found through the app's serverFarmId.
    assert checks[names.INVENTORY_PLAN] == "B1 (Basic), 1 instance, plan huddleup-plan, West US 3"
    [plan_call] = fake_az.calls_of("appservice plan show")
    assert plan_call[plan_call.index("--ids") + 1] == PLAN_ID
    # Traffic: 3,500 requests over 7 days.
    assert data["traffic"]["total_requests"] == 3500
    assert data["traffic"]["average_daily_requests"] == 500.0
    assert data["traffic"]["failure_rate"] == round(10 / 3500, 4)
    assert checks[names.INVENTORY_TRAFFIC].startswith("500 requests/day over 7 days (3,500 in")
    [rest] = fake_az.calls_of("rest")
    assert json.loads(rest[rest.index("--body") + 1])["timespan"] == "P7D"
    assert APP_ID in rest[rest.index("--url") + 1]
    # Integrations: hosts and names, never credentials.
    integrations = {i["name"]: i["detail"] for i in data["integrations"]}
    assert integrations == {
        "MongoDB": "cluster0.abcde.mongodb.net (MongoDB Atlas, mongodb+srv), database paletai",
        "AI provider": "openai, model gpt-4o",
        "OneSignal": "app id 0a1b2c3d-4e5f-6789-abcd-ef0123456789, REST API key set",
        "Azure Blob Storage": "account paletaiold, container game-images",
        "Application Insights": "paletai-ai",
    }
    for secret in SECRETS:
        assert secret not in result.output
        assert secret not in json.dumps(data)


def test_inventory_without_app_insights_fails_the_traffic_item(
    fake_az: FakeAz, tmp_path: Path
) -> None:
    with_app(fake_az, insights=False)
    fake_az.respond("webapp config hostname list", [{"name": f"{APP}.azurewebsites.net"}])
    result, data = inventory(tmp_path)
    assert result.exit_code == 1, result.output
    assert data is not None
    checks = {c["name"]: c for c in data["checks"]}
    assert checks[names.INVENTORY_TRAFFIC]["ok"] is False
    assert "Application Insights is not set up" in checks[names.INVENTORY_TRAFFIC]["detail"]
    assert checks[names.INVENTORY_DOMAINS]["detail"] == f"none: only {APP}.azurewebsites.net"
    assert data["traffic"] is None
    assert "Application Insights: not found" in checks[names.INVENTORY_INTEGRATIONS]["detail"]
    assert [c["name"] for c in data["checks"] if not c["ok"]] == [names.INVENTORY_TRAFFIC]
    assert fake_az.calls_of("rest") == []


def test_inventory_when_not_logged_in_or_the_app_is_missing(
    fake_az: FakeAz, tmp_path: Path
) -> None:
    for stderr, expected in (
        (NOT_LOGGED_IN, "run `az login`"),
        (APP_NOT_FOUND, "was not found; check --app and --resource-group"),
    ):
        fake_az.respond("webapp config appsettings list", exit_code=1, stderr=stderr)
        result, data = inventory(tmp_path)
        assert result.exit_code == 2, result.output
        assert data is None
        [line] = [line for line in result.stderr.splitlines() if line.strip()]
        assert line.startswith("error: `az webapp config appsettings list`: ")
        assert expected in line


def test_mongodb_hosts_never_shows_credentials() -> None:
    assert mongodb_hosts(
        "mongodb://u:p%40ss@a.example:27017,b.example:27017/paletai?replicaSet=rs"
    ) == ("a.example:27017,b.example:27017 (self-hosted MongoDB, mongodb), database paletai")
    assert (
        mongodb_hosts("mongodb://acct:key==@acct.mongo.cosmos.azure.com:10255/?ssl=true")
        == "acct.mongo.cosmos.azure.com:10255 (Azure Cosmos DB for MongoDB, mongodb)"
    )
    assert mongodb_hosts("not a uri") == "DB_PATH is not a mongodb:// URI"
