"""`paletai deploy verify` against the fake `az`: Phase 1 and the post-migration resources, as
Azure would describe what deploy/main.bicep creates, then one thing wrong at a time."""

from __future__ import annotations

import copy
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.checks import names
from tests.fixtures.fake_az import FAKE_AZ, FakeAz

runner = CliRunner()

RG = "rg-paletai-prod"
APP = "paletai-abc123"
SUB = "/subscriptions/0000-1111/resourceGroups/rg-paletai-prod/providers"
PLAN_ID = f"{SUB}/Microsoft.Web/serverfarms/paletai-plan-abc123"
SITE_ID = f"{SUB}/Microsoft.Web/sites/{APP}"
STORAGE_ID = f"{SUB}/Microsoft.Storage/storageAccounts/paletaiabc123"
INSIGHTS_ID = f"{SUB}/microsoft.insights/components/paletai-insights-abc123"
WEBTEST_ID = f"{SUB}/microsoft.insights/webtests/paletai-health-abc123"
GROUP_ID = f"{SUB}/microsoft.insights/actionGroups/paletai-alerts-abc123"
PRINCIPAL = "9f8e7d6c-0000-4000-8000-123456789abc"
INSIGHTS_KEY = "11111111-2222-3333-4444-555555555555"
CONNECTION = (
    f"InstrumentationKey={INSIGHTS_KEY};IngestionEndpoint=https://westus3-1.in.applicationinsights"
    ".azure.com/"
)
STORAGE_KEY = "c3RvcmFnZS1rZXktdGhhdC1tdXN0LW5ldmVyLWJlLXByaW50ZWQ="
DB_PATH = "mongodb+srv://paletai:S3cret-db-pass@cluster0.example.net/paletai"


def _alert(name: str, metric: str, operator: str, threshold: float, window: str) -> dict[str, Any]:
    return {
        "name": f"paletai-{name}-abc123",
        "enabled": True,
        "windowSize": window,
        "scopes": [SITE_ID],
        "criteria": {
            "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
            "allOf": [
                {
                    "metricName": metric,
                    "operator": operator,
                    "threshold": threshold,
                    "timeAggregation": "Average",
                }
            ],
        },
        "actions": [{"actionGroupId": GROUP_ID}],
    }


def azure() -> dict[str, Any]:
    """What az answers for a group deployed by main.bicep (trimmed to what verify reads)."""
    return {
        "group exists": True,
        "resource list": [
            {"id": PLAN_ID, "name": "paletai-plan-abc123", "type": "Microsoft.Web/serverFarms"},
            {"id": SITE_ID, "name": APP, "type": "Microsoft.Web/sites", "kind": "app,linux"},
            {
                "id": STORAGE_ID,
                "name": "paletaiabc123",
                "type": "Microsoft.Storage/storageAccounts",
            },
            {
                "id": INSIGHTS_ID,
                "name": "paletai-insights-abc123",
                "type": "microsoft.insights/components",
            },
            {
                "id": WEBTEST_ID,
                "name": "paletai-health-abc123",
                "type": "microsoft.insights/webtests",
            },
            {
                "id": GROUP_ID,
                "name": "paletai-alerts-abc123",
                "type": "microsoft.insights/actionGroups",
                "location": "global",
            },
        ],
        "webapp show": {
            "id": SITE_ID,
            "name": APP,
            "state": "Running",
            "defaultHostName": f"{APP}.azurewebsites.net",
            "httpsOnly": True,
            "appServicePlanId": PLAN_ID,
            "identity": {"type": "SystemAssigned", "principalId": PRINCIPAL},
            "siteConfig": {
                "healthCheckPath": "/health",
                "minTlsVersion": "1.2",
                "cors": None,
                "ipSecurityRestrictions": [
                    {
                        "ipAddress": "Any",
                        "action": "Allow",
                        "priority": 2147483647,
                        "name": "Allow all",
                    }
                ],
                "ipSecurityRestrictionsDefaultAction": "Allow",
            },
        },
        "webapp config appsettings list": [
            {
                "name": "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "value": CONNECTION,
                "slotSetting": False,
            },
            {"name": "CORS_ORIGINS", "value": "https://paletai.com", "slotSetting": False},
            {"name": "DB_PATH", "value": DB_PATH, "slotSetting": False},
            {
                "name": "AZURE_STORAGE_CONNECTION_STRING",
                "value": "DefaultEndpointsProtocol=https;AccountName=paletaiabc123;"
                f"AccountKey={STORAGE_KEY}",
                "slotSetting": False,
            },
        ],
        "appservice plan list": [
            {
                "id": PLAN_ID,
                "name": "paletai-plan-abc123",
                "kind": "linux",
                "reserved": True,
                "sku": {"name": "B1", "tier": "Basic", "capacity": 1},
            }
        ],
        "storage account list": [
            {
                "id": STORAGE_ID,
                "name": "paletaiabc123",
                "kind": "StorageV2",
                "sku": {"name": "Standard_LRS"},
                "allowBlobPublicAccess": True,
            }
        ],
        "storage container-rm show": {"name": "game-images", "publicAccess": "Blob"},
        "resource show": [
            {
                "id": INSIGHTS_ID,
                "name": "paletai-insights-abc123",
                "properties": {"ConnectionString": CONNECTION, "WorkspaceResourceId": "/ws"},
            },
            {
                "id": WEBTEST_ID,
                "name": "paletai-health-abc123",
                "properties": {
                    "Enabled": True,
                    "Frequency": 300,
                    "Locations": [{"Id": f"loc-{i}"} for i in range(5)],
                    "Request": {"RequestUrl": f"https://{APP}.azurewebsites.net/health"},
                },
            },
        ],
        "monitor action-group list": [
            {
                "id": GROUP_ID,
                "name": "paletai-alerts-abc123",
                "enabled": True,
                "emailReceivers": [{"name": "operators", "emailAddress": "ops@paletai.com"}],
            }
        ],
        "monitor metrics alert list": [
            _alert("http-5xx", "Http5xx", "GreaterThan", 5, "PT5M"),
            _alert("response-time", "HttpResponseTime", "GreaterThan", 5, "PT5M"),
            _alert("cpu", "CpuPercentage", "GreaterThan", 80, "PT10M"),
            _alert("memory", "MemoryPercentage", "GreaterThan", 80, "PT10M"),
            _alert("disk", "FileSystemUsage", "GreaterThan", 9126805504, "PT15M"),
            _alert(
                "availability",
                "availabilityResults/availabilityPercentage",
                "LessThan",
                99,
                "PT15M",
            ),
        ],
        "consumption budget list": [
            {
                "name": "paletai-budget-abc123",
                "amount": 50.0,
                "timeGrain": "Monthly",
                "category": "Cost",
                "notifications": {
                    "actual80": {
                        "enabled": True,
                        "threshold": 80.0,
                        "operator": "GreaterThanOrEqualTo",
                        "contactEmails": [],
                        "contactGroups": [GROUP_ID],
                    },
                    "actual100": {
                        "enabled": True,
                        "threshold": 100.0,
                        "operator": "GreaterThanOrEqualTo",
                        "contactEmails": [],
                        "contactGroups": [GROUP_ID],
                    },
                },
            }
        ],
        "role assignment list": [
            {
                "principalId": PRINCIPAL,
                "roleDefinitionId": (
                    "/subscriptions/0000-1111/providers/Microsoft.Authorization/roleDefinitions/"
                    "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
                ),
                "scope": STORAGE_ID,
            }
        ],
    }


def answer(fake_az: FakeAz, answers: dict[str, Any]) -> None:
    for command, stdout in answers.items():
        fake_az.respond(command, stdout)


def verify(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "deploy-verify.json"
    out.unlink(missing_ok=True)
    result = runner.invoke(deploy_app, ["verify", "-g", RG, *args, "--json", str(out)])
    report = json.loads(out.read_text()) if out.exists() else {}
    return result.exit_code, result.output, report


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def failed(report: dict[str, Any]) -> list[str]:
    return [c["name"] for c in report["checks"] if not c["ok"]]


def test_a_group_deployed_by_main_bicep_passes_every_line(fake_az: FakeAz, tmp_path: Path) -> None:
    answer(fake_az, azure())
    code, output, report = verify(tmp_path, "--subscription", "sub-1")
    assert code == 0, output
    assert report["command"] == "deploy verify"
    assert report["ok"] is True
    assert report["app"] == APP
    assert report["plan_sku"] == "B1"
    got = checks(report)
    assert list(got) == [
        names.INFRA_GROUP,
        names.INFRA_PLAN,
        names.INFRA_APP,
        names.INFRA_STORAGE,
        names.INFRA_CONTAINER,
        names.INFRA_INSIGHTS,
        names.INFRA_INSIGHTS_SETTING,
        names.INFRA_HEALTH_CHECK,
        names.ALERT_ACTION_GROUP,
        names.ALERT_HTTP_5XX,
        names.ALERT_RESPONSE_TIME,
        names.ALERT_AVAILABILITY,
        names.ALERT_CPU,
        names.ALERT_MEMORY,
        names.ALERT_DISK,
        names.ALERT_WEB_TEST,
        names.COST_BUDGET,
        names.COST_BUDGET_NOTIFICATIONS,
        names.SECURITY_HTTPS_ONLY,
        names.SECURITY_IDENTITY,
        names.SECURITY_BLOB_ROLE,
        names.SECURITY_CORS,
        names.SECURITY_IP_RESTRICTIONS,
    ]
    assert got[names.INFRA_PLAN]["detail"] == "paletai-plan-abc123: SKU B1 (Basic), Linux"
    assert got[names.INFRA_CONTAINER]["detail"] == "paletaiabc123/game-images: public access Blob"
    assert "Http5xx Average > 5 over PT5M" in got[names.ALERT_HTTP_5XX]["detail"]
    assert got[names.COST_BUDGET_NOTIFICATIONS]["detail"] == (
        "notifications at 80%, 100% of the budget"
    )
    assert "https://paletai.com" in got[names.SECURITY_CORS]["detail"]
    assert "open to every address" in got[names.SECURITY_IP_RESTRICTIONS]["detail"]
    # Read-only az calls, each with the subscription; no secret reaches the screen or the file.
    verbs = {" ".join(argv[:3]) for argv in fake_az.argvs()}
    assert not any(v.split()[-1] in {"create", "set", "update", "delete", "add"} for v in verbs)
    assert all(argv[-2:] == ["--subscription", "sub-1"] for argv in fake_az.argvs())
    text = output + json.dumps(report)
    for secret in (INSIGHTS_KEY, STORAGE_KEY, "S3cret-db-pass"):
        assert secret not in text


def _without(
    resource_type: str, list_command: str | None = None
) -> Callable[[dict[str, Any]], None]:
    def change(answers: dict[str, Any]) -> None:
        answers["resource list"] = [
            r for r in answers["resource list"] if r["type"].lower() != resource_type.lower()
        ]
        if list_command is not None:
            answers[list_command] = []

    return change


@pytest.mark.parametrize(
    ("change", "failing", "words"),
    [
        (
            _without("Microsoft.Web/serverFarms", "appservice plan list"),
            [names.INFRA_PLAN],
            "no App Service Plan in rg-paletai-prod",
        ),
        (
            _without("Microsoft.Storage/storageAccounts", "storage account list"),
            [names.INFRA_STORAGE, names.INFRA_CONTAINER, names.SECURITY_BLOB_ROLE],
            "no storage account in rg-paletai-prod",
        ),
        (
            _without("microsoft.insights/components"),
            [names.INFRA_INSIGHTS, names.INFRA_INSIGHTS_SETTING],
            "no Application Insights in rg-paletai-prod",
        ),
        (
            _without("microsoft.insights/webtests"),
            [names.ALERT_WEB_TEST],
            "no availability web test in rg-paletai-prod",
        ),
        (
            _without("microsoft.insights/actionGroups", "monitor action-group list"),
            [names.ALERT_ACTION_GROUP],
            "no action group in rg-paletai-prod",
        ),
        (
            lambda a: a.update({"consumption budget list": []}),
            [names.COST_BUDGET, names.COST_BUDGET_NOTIFICATIONS],
            "no budget in rg-paletai-prod",
        ),
        (
            lambda a: a["monitor metrics alert list"].pop(1),
            [names.ALERT_RESPONSE_TIME],
            "no metric alert on HttpResponseTime (response time > 5 s)",
        ),
        (
            lambda a: a.update({"role assignment list": []}),
            [names.SECURITY_BLOB_ROLE],
            "no Storage Blob Data Contributor role on paletaiabc123",
        ),
    ],
)
def test_each_missing_resource_fails_its_line_and_says_what_to_run(
    fake_az: FakeAz,
    tmp_path: Path,
    change: Callable[[dict[str, Any]], Any],
    failing: list[str],
    words: str,
) -> None:
    answers = copy.deepcopy(azure())
    change(answers)
    answer(fake_az, answers)
    code, output, report = verify(tmp_path)
    assert code == 1, output
    assert failed(report) == failing
    detail = checks(report)[failing[0]]["detail"]
    assert words in detail
    if "role" not in words and "alert on" not in words:
        assert "run `paletai deploy infra --resource-group rg-paletai-prod" in detail
    assert f"FAILED deploy verify {RG}" in output


def test_no_web_app_in_the_group(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    _without("Microsoft.Web/sites")(answers)
    answer(fake_az, answers)
    code, output, report = verify(tmp_path)
    assert code == 1, output
    got = checks(report)
    assert not got[names.INFRA_APP]["ok"]
    assert got[names.INFRA_APP]["detail"].startswith("no web app in rg-paletai-prod; run `paletai")
    assert fake_az.calls_of("webapp show") == []


def test_a_stopped_app_fails_and_says_how_to_start_it(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["webapp show"]["state"] = "Stopped"
    answer(fake_az, answers)
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [names.INFRA_APP]
    assert "paletai-abc123 is Stopped" in checks(report)[names.INFRA_APP]["detail"]
    assert "paletai deploy start --name paletai-abc123" in checks(report)[names.INFRA_APP]["detail"]


def test_a_private_container_fails(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["storage container-rm show"] = {"name": "game-images", "publicAccess": "None"}
    answer(fake_az, answers)
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [names.INFRA_CONTAINER]
    detail = checks(report)[names.INFRA_CONTAINER]["detail"]
    assert "paletaiabc123/game-images is private (public access None)" in detail
    assert "--public-access blob" in detail


def test_a_missing_container_names_it(fake_az: FakeAz, tmp_path: Path) -> None:
    answer(fake_az, azure())
    fake_az.respond(
        "storage container-rm show",
        exit_code=3,
        stderr="ERROR: (ContainerNotFound) The specified container does not exist.",
    )
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [names.INFRA_CONTAINER]
    assert checks(report)[names.INFRA_CONTAINER]["detail"].startswith(
        "no container game-images in paletaiabc123; run `paletai deploy infra"
    )


def test_no_insights_connection_string_on_the_app(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["webapp config appsettings list"] = [
        s
        for s in answers["webapp config appsettings list"]
        if s["name"] != "APPLICATIONINSIGHTS_CONNECTION_STRING"
    ]
    answer(fake_az, answers)
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [names.INFRA_INSIGHTS_SETTING]
    assert checks(report)[names.INFRA_INSIGHTS_SETTING]["detail"].startswith(
        "APPLICATIONINSIGHTS_CONNECTION_STRING is not set on paletai-abc123"
    )


def test_another_insights_resource_connection_string_fails(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["webapp config appsettings list"][0]["value"] = "InstrumentationKey=other-key;"
    answer(fake_az, answers)
    _, _, report = verify(tmp_path)
    assert failed(report) == [names.INFRA_INSIGHTS_SETTING]
    assert "other-key" not in json.dumps(report)


def test_a_wrong_sku_shows_the_real_one(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["appservice plan list"][0]["sku"] = {"name": "S1", "tier": "Standard"}
    answer(fake_az, answers)
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [names.INFRA_PLAN]
    assert checks(report)[names.INFRA_PLAN]["detail"] == (
        "paletai-plan-abc123: SKU S1 (Standard), Linux; expected B1 (pass --sku S1 if intended)"
    )
    assert report["plan_sku"] == "S1"
    code, output, report = verify(tmp_path, "--sku", "S1")
    assert code == 0, output
    assert report["expected_sku"] == "S1"


def test_security_settings_that_are_wrong(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    site = answers["webapp show"]
    site["httpsOnly"] = False
    site["identity"] = None
    site["siteConfig"]["cors"] = {"allowedOrigins": ["*"]}
    site["siteConfig"]["ipSecurityRestrictionsDefaultAction"] = "Deny"
    site["siteConfig"]["healthCheckPath"] = None
    answer(fake_az, answers)
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [
        names.INFRA_HEALTH_CHECK,
        names.SECURITY_HTTPS_ONLY,
        names.SECURITY_IDENTITY,
        names.SECURITY_BLOB_ROLE,
        names.SECURITY_CORS,
        names.SECURITY_IP_RESTRICTIONS,
    ]
    got = checks(report)
    assert "--https-only true" in got[names.SECURITY_HTTPS_ONLY]["detail"]
    assert "az webapp identity assign" in got[names.SECURITY_IDENTITY]["detail"]
    assert "nobody reaches the app" in got[names.SECURITY_IP_RESTRICTIONS]["detail"]


def test_ip_restrictions_are_listed(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    config = answers["webapp show"]["siteConfig"]
    config["ipSecurityRestrictions"] = [
        {"ipAddress": "203.0.113.0/24", "action": "Allow", "name": "allow-0"},
        {"ipAddress": "Any", "action": "Deny", "name": "Deny all"},
    ]
    config["ipSecurityRestrictionsDefaultAction"] = "Deny"
    answer(fake_az, answers)
    code, output, report = verify(tmp_path)
    assert code == 0, output
    assert checks(report)[names.SECURITY_IP_RESTRICTIONS]["detail"] == (
        "allowed 203.0.113.0/24; everything else Deny"
    )


def test_alerts_and_budget_with_other_values_fail(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["monitor metrics alert list"][0]["criteria"]["allOf"][0]["threshold"] = 50
    answers["monitor metrics alert list"][2]["actions"] = []
    answers["consumption budget list"][0]["amount"] = 500.0
    del answers["consumption budget list"][0]["notifications"]["actual100"]
    answers["monitor action-group list"][0]["emailReceivers"] = []
    answer(fake_az, answers)
    code, _, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [
        names.ALERT_ACTION_GROUP,
        names.ALERT_HTTP_5XX,
        names.ALERT_CPU,
        names.COST_BUDGET,
        names.COST_BUDGET_NOTIFICATIONS,
    ]
    got = checks(report)
    assert "alerts reach nobody" in got[names.ALERT_ACTION_GROUP]["detail"]
    assert "the checklist asks HTTP 5xx > 5 in 5 minutes" in got[names.ALERT_HTTP_5XX]["detail"]
    assert "it fires to nobody" in got[names.ALERT_CPU]["detail"]
    assert "500 Monthly; expected 50" in got[names.COST_BUDGET]["detail"]
    assert "missing 100%" in got[names.COST_BUDGET_NOTIFICATIONS]["detail"]


def test_a_missing_group_says_what_to_run(fake_az: FakeAz, tmp_path: Path) -> None:
    fake_az.respond("group exists", False)
    code, output, report = verify(tmp_path)
    assert code == 1
    assert failed(report) == [names.INFRA_GROUP]
    assert "resource group rg-paletai-prod does not exist" in output
    assert "paletai deploy infra --resource-group rg-paletai-prod --location LOCATION" in output
    assert len(fake_az.argvs()) == 1


def test_not_signed_in_is_one_line(fake_az: FakeAz, tmp_path: Path) -> None:
    fake_az.respond(
        "group exists", exit_code=1, stderr="ERROR: Please run 'az login' to setup account."
    )
    code, output, report = verify(tmp_path)
    assert code == 1
    assert report == {}
    heading, error = output.strip().splitlines()
    assert heading == f"Phase 1: what is deployed in {RG}?"
    assert error.startswith("error: az is not signed in; run `az login --tenant")
    assert "Traceback" not in output


def test_several_apps_need_app(fake_az: FakeAz, tmp_path: Path) -> None:
    answers = azure()
    answers["resource list"].append(
        {"id": SITE_ID + "-old", "name": "old-app", "type": "Microsoft.Web/sites", "kind": "app"}
    )
    answer(fake_az, answers)
    code, output, _ = verify(tmp_path)
    assert code == 2
    assert "holds 2 web apps (old-app, paletai-abc123); say which with --app NAME" in output
    code, output, report = verify(tmp_path, "--app", APP)
    assert code == 0, output
    code, output, report = verify(tmp_path, "--app", "nope")
    assert code == 1
    assert "web app nope not found in rg-paletai-prod" in checks(report)[names.INFRA_APP]["detail"]


def verify_command_lines() -> list[str]:
    """The az lines `deploy verify` runs (read-only, so recorded from a run against the fake)."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as mp:
        bin_dir = Path(folder) / "bin"
        bin_dir.mkdir()
        script = bin_dir / "az"
        script.write_text(FAKE_AZ.format(python=sys.executable))
        script.chmod(0o755)
        log = Path(folder) / "az-calls.jsonl"
        fake = FakeAz(bin_dir, log)
        mp.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.setenv("FAKE_AZ_LOG", str(log))
        mp.setenv("FAKE_AZ_RESPONSES", str(fake.responses_file))
        answer(fake, azure())
        code, output, _ = verify(Path(folder), "--subscription", "sub-1")
        assert code == 0, output
        return [shlex.join(["az", *argv]) for argv in fake.argvs()]
