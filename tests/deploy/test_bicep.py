"""deploy/main.bicep and deploy/parameters.json, checked without Azure.

No Bicep compiler can be installed here (it ships as a .NET binary on GitHub and NuGet, neither
reachable), so main.bicep is NOT compiled by these tests. They check what can be checked offline:
- the real Bicep grammar (tree-sitter-bicep, when installed) parses the file with no error;
- brackets and strings balance; every parameter is used; the resource types and API versions are
  ones Azure publishes; the properties the checklist relies on are set;
- the app settings are the app's own setting names, the @secure parameters are exactly the ones
  `paletai deploy infra` fills from the environment, and parameters.json names real parameters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from paletai.config import Settings
from paletai.ops.azure import deploy as ops

REPO = Path(__file__).resolve().parents[2]
BICEP = REPO / "deploy" / "main.bicep"
PARAMETERS = REPO / "deploy" / "parameters.json"

# Resource types and API versions of main.bicep, each published by Azure (the Bicep type index,
# Azure/bicep-types-az `generated/<provider>/<namespace>/<version>/types.md`).
PUBLISHED_API_VERSIONS = {
    "Microsoft.Web/serverfarms": {"2022-09-01", "2023-01-01", "2023-12-01", "2024-04-01"},
    "Microsoft.Web/sites": {"2022-09-01", "2023-01-01", "2023-12-01", "2024-04-01"},
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies": {"2023-01-01", "2023-12-01"},
    "Microsoft.Storage/storageAccounts": {"2023-01-01", "2023-04-01", "2023-05-01"},
    "Microsoft.Storage/storageAccounts/blobServices": {"2023-01-01", "2023-05-01"},
    "Microsoft.Storage/storageAccounts/blobServices/containers": {"2023-01-01", "2023-05-01"},
    "Microsoft.OperationalInsights/workspaces": {"2022-10-01", "2023-09-01"},
    "Microsoft.Insights/components": {"2020-02-02"},
    "Microsoft.Insights/actionGroups": {"2022-06-01", "2023-01-01"},
    "Microsoft.Insights/metricAlerts": {"2018-03-01"},
    "Microsoft.Insights/webtests": {"2022-06-15"},
    "Microsoft.Consumption/budgets": {"2023-05-01", "2023-11-01"},
    "Microsoft.Authorization/roleAssignments": {"2022-04-01"},
}


@dataclass
class Param:
    type: str
    default: str | None  # source text
    decorators: list[str]
    allowed: list[str]


def _code(text: str) -> str:
    """The file with comments removed and string contents blanked (quotes kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            assert end != -1, "unterminated /* comment"
            i = end + 2
        elif text[i] == "'":
            out.append("'")
            i += 1
            while True:
                assert i < n, "unterminated string"
                if text[i] == "\\":
                    i += 2
                    continue
                if text[i] == "'":
                    break
                out.append("x" if text[i] != "\n" else "\n")
                i += 1
            out.append("'")
            i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@pytest.fixture(scope="module")
def bicep() -> str:
    return BICEP.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def params(bicep: str) -> dict[str, Param]:
    """The parameter declarations, with their decorators and @allowed values."""
    out: dict[str, Param] = {}
    decorators: list[str] = []
    allowed: list[str] = []
    in_allowed = False
    for line in bicep.splitlines():
        stripped = line.strip()
        if in_allowed:
            if stripped == "])":
                in_allowed = False
            else:
                allowed.append(stripped.strip("'"))
            continue
        if stripped.startswith("@"):
            decorators.append(stripped)
            in_allowed = stripped == "@allowed(["
            continue
        m = re.match(r"param (\w+) (\w+)(?: = (.+))?$", stripped)
        if m:
            out[m.group(1)] = Param(m.group(2), m.group(3), decorators, allowed)
        if m or stripped.startswith(("resource ", "var ", "output ")):
            decorators, allowed = [], []
    return out


def _block(bicep: str, header: str) -> str:
    """The `{ ... }` or `[ ... ]` that follows `header`, by bracket depth."""
    start = bicep.index(header)
    open_at = min(i for i in (bicep.find("{", start), bicep.find("[", start)) if i != -1)
    depth = 0
    for i in range(open_at, len(bicep)):
        if bicep[i] in "{[":
            depth += 1
        elif bicep[i] in "}]":
            depth -= 1
            if depth == 0:
                return bicep[open_at : i + 1]
    raise AssertionError(f"unbalanced block after {header!r}")


def test_brackets_and_strings_balance(bicep: str) -> None:
    code = _code(bicep)
    pairs = {"}": "{", "]": "[", ")": "("}
    stack: list[tuple[str, int]] = []
    for lineno, line in enumerate(code.splitlines(), 1):
        for ch in line:
            if ch in "{[(":
                stack.append((ch, lineno))
            elif ch in pairs:
                assert stack, f"line {lineno}: unmatched {ch}"
                opened, at = stack.pop()
                assert opened == pairs[ch], f"line {lineno}: {ch} closes {opened} of line {at}"
    assert not stack, f"unclosed {stack}"


def test_the_real_bicep_grammar_parses_it(bicep: str) -> None:
    # Dev dependencies (pyproject): a missing install fails here rather than skipping.
    import tree_sitter as ts
    import tree_sitter_bicep as ts_bicep

    parser = ts.Parser(ts.Language(ts_bicep.language()))

    def errors(source: str) -> list[str]:
        found: list[str] = []
        stack = [parser.parse(source.encode()).root_node]
        while stack:
            node = stack.pop()
            if node.type == "ERROR" or node.is_missing:
                found.append(f"line {node.start_point[0] + 1}: {(node.text or b'')[:60]!r}")
            stack.extend(node.children)
        return found

    assert errors(bicep) == []
    # The same check finds a broken copy (so a pass above means something).
    assert errors(bicep.replace("    publicAccess: 'Blob'\n", "    publicAccess: \n", 1))


def test_resource_types_and_api_versions_are_published(bicep: str) -> None:
    declared = re.findall(r"^resource (\w+) '([^'@]+)@([^']+)'", bicep, re.MULTILINE)
    types = {rtype for _, rtype, _ in declared}
    assert types == set(PUBLISHED_API_VERSIONS)
    for symbol, rtype, version in declared:
        assert version in PUBLISHED_API_VERSIONS[rtype], f"{symbol}: {rtype}@{version}"
    # One API version per provider namespace family keeps the file consistent.
    assert len({v for _, t, v in declared if t.startswith("Microsoft.Web/")}) == 1
    assert len({v for _, t, v in declared if t.startswith("Microsoft.Storage/")}) == 1


def test_every_parameter_is_used(bicep: str, params: dict[str, Param]) -> None:
    code = _code(bicep)
    # Interpolations live inside strings, which _code blanks: look for them in the raw text.
    interpolated = set(re.findall(r"\$\{([^}]*)\}", bicep))
    for name in params:
        uses = len(re.findall(rf"\b{name}\b", code)) - 1  # minus the declaration
        in_strings = any(re.search(rf"\b{name}\b", expr) for expr in interpolated)
        assert uses > 0 or in_strings, f"param {name} is never used"


def test_secure_parameters_are_what_deploy_infra_fills(
    params: dict[str, Param],
) -> None:
    secure = {n for n, p in params.items() if "@secure()" in p.decorators}
    assert secure == set(ops.SECRET_PARAMETERS)
    required = {n for n, p in params.items() if p.default is None}
    assert required == set(ops.REQUIRED_SECRET_PARAMETERS)
    for name in secure - required:
        assert params[name].default == "''", f"{name}: a secret's only default is empty"
    assert "@minLength(32)" in params["jwtSecretKey"].decorators


def test_defaults_the_checklist_expects(params: dict[str, Param]) -> None:
    assert params["skuName"].default == "'B1'"
    assert params["pythonVersion"].default == "'3.11'"
    assert params["containerName"].default == "'game-images'"
    assert params["startupCommand"].default == f"'{ops.STARTUP_COMMAND}'"
    assert params["location"].default == "resourceGroup().location"


def test_web_app_settings(bicep: str) -> None:
    web = _block(bicep, "resource webApp ")
    assert "kind: 'app,linux'" in web
    assert "linuxFxVersion: 'PYTHON|${pythonVersion}'" in web
    assert "httpsOnly: true" in web
    assert "ftpsState: 'Disabled'" in web
    assert "minTlsVersion: '1.2'" in web
    assert "appCommandLine: startupCommand" in web
    assert "alwaysOn: alwaysOn" in web
    assert re.search(r"identity: \{\s*type: 'SystemAssigned'\s*\}", web)
    assert "serverFarmId: plan.id" in web
    assert re.search(r"dependsOn: \[\s*container\s*\]", web)
    # alwaysOn is off exactly for the plans that refuse it.
    assert re.search(r"var alwaysOn = !contains\(\[\s*'F1'\s*'D1'\s*\], skuName\)", bicep)
    plan = _block(bicep, "resource plan ")
    assert "reserved: true" in plan
    assert "name: skuName" in plan


def test_storage_and_container(bicep: str) -> None:
    storage = _block(bicep, "resource storage ")
    assert "kind: 'StorageV2'" in storage
    assert "allowBlobPublicAccess: true" in storage
    assert "minimumTlsVersion: 'TLS1_2'" in storage
    assert "supportsHttpsTrafficOnly: true" in storage
    container = _block(bicep, "resource container ")
    assert "parent: blobService" in container
    assert "name: containerName" in container
    assert "publicAccess: 'Blob'" in container
    assert "name: 'default'" in _block(bicep, "resource blobService ")


def test_application_insights_is_workspace_based(bicep: str) -> None:
    insights = _block(bicep, "resource appInsights ")
    assert "WorkspaceResourceId: workspace.id" in insights
    assert "Application_Type: 'web'" in insights


def test_app_settings_are_the_apps_own_names(bicep: str) -> None:
    required = _block(bicep, "var requiredSettings =")
    optional = _block(bicep, "var optionalSettings =")
    # The settings built from other resources are a variable the site concatenates; the storage
    # one is the key or the account URL (managed identity), chosen by a parameter.
    site = _block(bicep, "var siteSettings =")
    assert re.search(r"appSettings: concat\(.*, siteSettings\)$", bicep, re.MULTILINE)
    storage_setting = bicep[bicep.index("var storageSetting =") :].split("\n}\n", 1)[0]
    assert "storageSetting" in site
    block = required + optional + site + storage_setting
    names = re.findall(r"name: '([A-Z0-9_]+)'", block)
    assert len(names) == len(set(names))
    assert {
        "DB_PATH",
        "AI_PROVIDER",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_MODEL",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_CONTAINER",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "JWT_SECRET_KEY",
        "ENVIRONMENT",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
    } <= set(names)
    # Every one is read by the app's Settings, except App Service's own build switch.
    unknown = set(names) - set(Settings.model_fields) - {"SCM_DO_BUILD_DURING_DEPLOYMENT"}
    assert unknown == set()
    # Each secret setting is fed by its own @secure parameter.
    for param, env in ops.SECRET_PARAMETERS.items():
        assert re.search(rf"name: '{env}'\s*value: {param}\s*\}}", block), env
    assert re.search(r"name: 'ENVIRONMENT'\s*value: 'production'", required)
    assert re.search(r"name: 'SCM_DO_BUILD_DURING_DEPLOYMENT'\s*value: 'true'", required)
    assert re.search(r"name: 'AZURE_STORAGE_CONTAINER'\s*value: containerName", required)
    # The lambda filters parameter values only: runtime values (listKeys, reference) stay out
    # of it, and the required settings are never filtered away.
    assert "(" not in _code(optional)
    assert "storage.listKeys().keys[0].value" in storage_setting
    assert "appInsights.properties.ConnectionString" in site
    assert re.search(
        r"appSettings: concat\(\s*requiredSettings,\s*"
        r"filter\(optionalSettings, setting => !empty\(setting\.value\)\),",
        bicep,
    )
    for name in re.findall(r"name: '([A-Z0-9_]+)'", optional):
        assert name not in {"DB_PATH", "JWT_SECRET_KEY", "ENVIRONMENT", "AI_PROVIDER"}


def test_outputs(bicep: str) -> None:
    outputs = dict(re.findall(r"^output (\w+) \w+ = (.+)$", bicep, re.MULTILINE))
    assert {"webAppName", "webAppUrl", "storageAccountName", "appInsightsName"} <= set(outputs)
    assert outputs["webAppUrl"] == "'https://${webApp.properties.defaultHostName}'"
    # No output may carry a secret (outputs are readable in the deployment history).
    for expression in outputs.values():
        assert not any(p in expression for p in ops.SECRET_PARAMETERS)
        assert "listKeys" not in expression


def test_parameters_json_names_real_non_secret_parameters(
    params: dict[str, Param],
) -> None:
    document = json.loads(PARAMETERS.read_text(encoding="utf-8"))
    assert document["$schema"] == ops.DEPLOYMENT_PARAMETERS_SCHEMA
    assert document["contentVersion"] == "1.0.0.0"
    for name, entry in document["parameters"].items():
        assert name in params, f"{name} is not a parameter of main.bicep"
        assert name not in ops.SECRET_PARAMETERS, f"{name} is a secret: keep it out of the file"
        assert set(entry) == {"value"}
    # Values respect the @allowed lists.
    for name, entry in document["parameters"].items():
        if params[name].allowed:
            assert entry["value"] in params[name].allowed, name


def test_allowed_values_hold_the_defaults(params: dict[str, Param]) -> None:
    assert params["skuName"].allowed[:3] == ["F1", "D1", "B1"]
    assert set(params["aiProvider"].allowed) == {"openai", "azure-openai", "anthropic", "offline"}
    for name, param in params.items():
        if param.allowed and param.default is not None:
            assert param.default.strip("'") in param.allowed, name
    assert {n for n, p in params.items() if p.allowed} == {"skuName", "storageSku", "aiProvider"}


def _metric_alerts(bicep: str) -> dict[str, dict[str, str]]:
    listing = _block(bicep, "var metricAlerts =")
    alerts: dict[str, dict[str, str]] = {}
    for item in re.split(r"\n  \{", listing)[1:]:
        fields = dict(re.findall(r"^\s+(\w+): (.+)$", item, re.MULTILINE))
        alerts[fields["name"].strip("'")] = fields
    return alerts


def test_alerts_have_the_checklists_thresholds(bicep: str) -> None:
    alerts = _metric_alerts(bicep)
    expected = {
        # name: (metric, aggregation, operator, threshold, window)
        "http-5xx": ("'Http5xx'", "'Total'", "'GreaterThan'", "5", "'PT5M'"),
        "response-time": ("'HttpResponseTime'", "'Average'", "'GreaterThan'", "5", "'PT5M'"),
        "cpu": ("'CpuPercentage'", "'Average'", "'GreaterThan'", "80", "'PT10M'"),
        "memory": ("'MemoryPercentage'", "'Average'", "'GreaterThan'", "80", "'PT10M'"),
    }
    for name, (metric, aggregation, operator, threshold, window) in expected.items():
        alert = alerts[name]
        assert (
            alert["metric"],
            alert["aggregation"],
            alert["operator"],
            alert["threshold"],
            alert["window"],
        ) == (metric, aggregation, operator, threshold, window), name
    assert alerts["cpu"]["scope"] == alerts["memory"]["scope"] == "plan.id"
    assert alerts["http-5xx"]["scope"] == "webApp.id"
    assert "* 85 / 100" in alerts["disk"]["threshold"]
    rule = _block(bicep, "resource alerts ")
    assert "for alert in metricAlerts" in rule
    assert "actionGroupId: alertGroup.id" in rule
    group = _block(bicep, "resource alertGroup ")
    assert "emailAddress: alertEmail" in group


def test_availability_test_of_health_alerts_under_99(bicep: str) -> None:
    webtest = _block(bicep, "resource healthTest ")
    assert "RequestUrl: 'https://${webApp.properties.defaultHostName}/health'" in webtest
    assert "ExpectedHttpStatusCode: 200" in webtest
    assert "'hidden-link:${appInsights.id}': 'Resource'" in webtest
    alert = _block(bicep, "resource availabilityAlert ")
    assert "metricName: 'availabilityResults/availabilityPercentage'" in alert
    assert re.search(r"operator: 'LessThan'\s*threshold: 99\b", alert)
    assert "healthTest.properties.Name" in alert


def test_budget_notifies_at_80_and_100_percent(bicep: str, params: dict[str, Param]) -> None:
    assert params["monthlyBudget"].default == "50"
    budget = _block(bicep, "resource budget ")
    assert "amount: monthlyBudget" in budget
    assert "timeGrain: 'Monthly'" in budget
    assert re.findall(r"threshold: (\d+)", budget) == ["80", "100"]


def test_health_check_cors_ip_restrictions_and_identity(bicep: str) -> None:
    web = _block(bicep, "resource webApp ")
    assert "healthCheckPath: '/health'" in web
    assert re.search(r"name: 'CORS_ORIGINS'\s*value: join\(corsOrigins, ','\)", bicep)
    assert "for (range, i) in allowedIpRanges" in web
    assert "ipSecurityRestrictionsDefaultAction: empty(allowedIpRanges) ? 'Allow' : 'Deny'" in web
    role = _block(bicep, "resource appBlobRole ")
    assert "scope: storage" in role
    assert "principalId: webApp.identity.principalId" in role
    # Storage Blob Data Contributor, Azure's built-in role id.
    assert "'ba92f5b4-2d11-453d-a403-e96b0029c9fe'" in bicep
    switch = bicep[bicep.index("var storageSetting =") :].split("\n}\n", 1)[0]
    assert "useManagedIdentityForStorage ?" in switch
    assert "name: 'AZURE_STORAGE_ACCOUNT_URL'" in switch


CHECKOV = REPO / "tools" / "bin" / "checkov"


def test_checkov_passes_with_reasoned_skips_only(bicep: str, tmp_path: Path) -> None:
    assert CHECKOV.exists(), "checkov is not installed: run `make tools`"
    # One run over the template and a broken copy of it: the copy must count as a parsing
    # error, so a template checkov cannot read would fail here too (not pass with 0 checks).
    (tmp_path / "main.bicep").write_text(bicep)
    (tmp_path / "broken.bicep").write_text(
        bicep.replace("    publicAccess: 'Blob'\n", "    publicAccess: \n", 1)
    )
    done = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "-f", "main.bicep", "-f", "broken.bicep"]
        + ["--compact", "--quiet", "--skip-download", "-o", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    report = json.loads(done.stdout)
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed == []
    summary = report["summary"]
    assert summary["parsing_errors"] == 1  # the broken copy only
    assert summary["passed"] >= 20
    # Every skip is one the template states, with its reason.
    skips = re.findall(r"// checkov:skip=(CKV_\w+):(.*)$", bicep, re.MULTILINE)
    assert summary["skipped"] == len(skips)
    for check, reason in skips:
        assert len(reason.strip()) > 20, f"{check}: say why it is skipped"
