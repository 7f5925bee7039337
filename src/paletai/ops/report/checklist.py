"""`paletai migrate report`: the migration checklist, filled in with what was measured.

Reads the `--json` results of the other commands found in a directory (each read by its
`command` field with that command's model from ops/results.py: `settings diff|export`, `db sync`,
`db cutover`, `db verify`, `storage copy`, `migrate check|dns|load`, `migrate rehearse`; a file
that is not such a result is listed as unreadable, never guessed) and writes the checklist as
Markdown, phase by phase. Every item is ticked `[x]` (measured and passed), failed `[!]`
(measured and failed) or left `[ ]` (no result in the directory says anything about it).
Evidence is quoted from the files only: nothing is claimed that was not measured. Anything that
looks like a secret is masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from paletai.ops.checks import names
from paletai.ops.results import (
    MODELS,
    AnyResult,
    CheckRecord,
    CheckResult,
    DbBackupResult,
    DbCutoverResult,
    DbRestoreResult,
    DbSyncResult,
    DbVerifyResult,
    DeployAppResult,
    DeployDecommissionResult,
    DeployDomainResult,
    DeployInfraResult,
    DeployVerifyResult,
    MigrateCheckResult,
    MigrateDnsResult,
    MigrateInsightsResult,
    MigrateInventoryResult,
    MigrateLoadResult,
    MigrateLogsResult,
    MigratePreflightResult,
    OpsResult,
    RehearseResult,
    RestoreTestFigures,
    SettingsDiffResult,
    SettingsExportResult,
    StorageCopyResult,
    TrafficFigures,
    parse_result,
)

R = TypeVar("R", bound=OpsResult)
Status = Literal["pass", "fail", "none", "manual"]
MARKS: dict[Status, str] = {"pass": "[x]", "fail": "[!]", "none": "[ ]", "manual": "[-]"}
DOWNTIME_GOAL_MINUTES = 15.0
RESPONSE_LIMIT_SECONDS = 2.0

# The kind of result each command's file gives the report (the section that reads it). Commands
# left out (db backup, db restore, settings apply) are known, and say nothing the report asks.
KIND_OF_COMMAND: dict[str, str] = {
    "settings diff": "settings",
    "settings export": "settings",
    "db sync": "sync",
    "db cutover": "cutover",
    "db verify": "verify",
    "storage copy": "storage",
    "migrate check": "check",
    "migrate dns": "dns",
    "migrate load": "load",
    "migrate rehearse": "rehearse",
}
KINDS = tuple(dict.fromkeys(KIND_OF_COMMAND.values()))

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(mongodb(?:\+srv)?://)[^/@\s]+@", re.I), r"\1****@"),
    (
        re.compile(r"((?:AccountKey|SharedAccessSignature|InstrumentationKey)=)[^;\s]+", re.I),
        r"\1****",
    ),
    (re.compile(r"([?&](?:sig|se|sp|sv)=)[^&\s)]+", re.I), r"\1****"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]{16,}", re.I), r"\1****"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), "****"),
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"), "****"),
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}"), "****"),
)


def mask_secrets(text: str) -> str:
    """Mask credentials in URIs, storage keys, SAS signatures, bearer tokens and API keys."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------------------------------
# Reading the directory


def classify(data: Any) -> str | None:
    """The kind of result (one of KINDS) its `command` field names, or None: never guessed."""
    command = data.get("command") if isinstance(data, dict) else None
    return KIND_OF_COMMAND.get(command) if isinstance(command, str) else None


@dataclass
class Results:
    """The newest result of each kind found in a directory, and what could not be read (why)."""

    settings: SettingsDiffResult | SettingsExportResult | None = None
    sync: DbSyncResult | None = None
    cutover: DbCutoverResult | None = None
    verify: DbVerifyResult | None = None
    storage: StorageCopyResult | None = None
    check: MigrateCheckResult | None = None
    dns: MigrateDnsResult | None = None
    load: MigrateLoadResult | None = None
    rehearse: RehearseResult | None = None
    files: dict[str, str] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    latest: dict[type[OpsResult], OpsResult] = field(default_factory=dict)
    every: dict[type[OpsResult], list[OpsResult]] = field(default_factory=dict)

    def of(self, model: type[R]) -> R | None:
        """The newest result of this model found in the directory (any command's), or None."""
        found = self.latest.get(model)
        return found if isinstance(found, model) else None

    def all_of(self, model: type[R]) -> list[R]:
        """Every result of this model in the directory, oldest first."""
        return [found for found in self.every.get(model, []) if isinstance(found, model)]

    def take(self, result: AnyResult, file_name: str) -> None:
        """Keep `result` (read after the older files) where the report looks for its kind."""
        if result.command not in KIND_OF_COMMAND:
            # Newer sections read their results through `of(Model)` (or `all_of`).
            self.latest[type(result)] = result
            self.every.setdefault(type(result), []).append(result)
            self.files[result.command] = file_name
            return
        match result:
            case SettingsExportResult() if isinstance(self.settings, SettingsDiffResult):
                return  # a diff says more than an export
            case SettingsDiffResult() | SettingsExportResult():
                self.settings = result
            case DbSyncResult():
                self.sync = result
            case DbCutoverResult():
                self.cutover = result
            case DbVerifyResult():
                self.verify = result
            case StorageCopyResult():
                self.storage = result
            case MigrateCheckResult():
                self.check = result
            case MigrateDnsResult():
                self.dns = result
            case MigrateLoadResult():
                self.load = result
            case RehearseResult():
                self.rehearse = result
            case _:
                return  # known, but says nothing the checklist asks (db backup, ...)
        self.files[KIND_OF_COMMAND[result.command]] = file_name


def why_unreadable(data: Any) -> str | None:
    """None when `data` is a result of a known command that fits its model; else, why not."""
    command = data.get("command") if isinstance(data, dict) else None
    if not isinstance(command, str):
        return 'no "command" field: not the --json result of a paletai command'
    if command not in MODELS:
        return f'unknown command "{command}"'
    try:
        parse_result(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "(top level)"
        return f"not a valid `{command}` result: {where}: {first['msg']}"
    return None


def load_results(directory: Path) -> Results:
    results = Results()
    paths = sorted(directory.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            reason = "not JSON" if isinstance(exc, ValueError) else exc.strerror
            results.unreadable.append(f"{path.name}: {reason}")
            continue
        why = why_unreadable(data)
        if why is not None:
            results.unreadable.append(f"{path.name}: {why}")
            continue
        results.take(parse_result(data), path.name)  # newest last: it wins
    return results


# ---------------------------------------------------------------------------------------------
# Items


@dataclass
class Item:
    text: str
    status: Status
    evidence: str = ""

    def line(self) -> str:
        evidence = f" — {self.evidence}" if self.evidence else ""
        return f"- {MARKS[self.status]} {self.text}{evidence}"


@dataclass
class Section:
    title: str
    items: list[Item] = field(default_factory=list)
    note: str = ""


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _secs(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _checks(data: CheckResult | None) -> dict[str, CheckRecord]:
    return {} if data is None else {check.name: check for check in data.checks}


def _from_check(
    text: str, data: CheckResult | None, source: str, *names: str, prefix: bool = False
) -> Item:
    """An item passed when the named checks (all present) passed; evidence is their detail."""
    if data is None:
        return Item(text, "none", f"no `{source}` result")
    checks = _checks(data)
    found = [
        c for n in names for key, c in checks.items() if key == n or (prefix and key.startswith(n))
    ]
    if not found:
        return Item(text, "none", f"`{source}` did not run this check")
    bad = [c for c in found if not c.ok]
    shown = bad[0] if bad else found[0]
    evidence = f"{shown.detail} — {_secs(shown.seconds)}"
    return Item(text, "fail" if bad else "pass", evidence)


def _manual(text: str, why: str) -> Item:
    """An item no command can measure from here, and why (a person ticks it)."""
    return Item(text, "manual", f"not measurable from here: {why}")


def _bool_item(text: str, ok: bool | None, evidence: str) -> Item:
    return Item(text, "none" if ok is None else "pass" if ok else "fail", evidence)


def _counts(counts: list[tuple[str, int, int]]) -> str:
    """`users 1,000 = 1,000, games 10 ≠ 9` for the collections a reader looks at first."""
    wanted = ("users", "games", "likes", "tasks")
    return ", ".join(
        f"{name} {_n(source)} {'=' if source == target else '≠'} {_n(target)}"
        for name, source, target in counts
        if name in wanted
    )


# ---------------------------------------------------------------------------------------------
# Phases


def _preflight_section(r: Results) -> Section:
    """Pre-Migration "Information Gathering", from `migrate preflight`."""
    data = r.of(MigratePreflightResult)
    section = Section("Pre-Migration: Information Gathering")
    src = "migrate preflight"
    if data is not None and data.account:
        section.note = f"az signed in as {data.account} ({data.account_type})"
    tenant = f": {data.tenant}" if data is not None and data.tenant else ""
    sub = f": {data.subscription}" if data is not None and data.subscription else ""
    section.items += [
        _az_item(f"Collected new Azure Tenant ID{tenant}", data, names.PREFLIGHT_AZ_TENANT),
        _az_item(
            f"Collected new Azure Subscription ID{sub}", data, names.PREFLIGHT_AZ_SUBSCRIPTION
        ),
        _az_item(
            "Verified Contributor/Owner access to new subscription", data, names.PREFLIGHT_AZ_ROLE
        ),
        _from_check("MongoDB connection string ready", data, src, names.PREFLIGHT_MONGODB),
        _ai_keys_item(data),
        _from_check(
            "OneSignal credentials ready (if using push notifications)",
            data,
            src,
            names.PREFLIGHT_ONESIGNAL,
        ),
    ]
    return section


def _az_item(text: str, data: MigratePreflightResult | None, name: str) -> Item:
    """An az check's item; one not run says why (az not signed in, no such option given)."""
    checks = _checks(data)
    if data is None or name in checks:
        return _from_check(text, data, "migrate preflight", name)
    for before in (names.PREFLIGHT_AZ_SIGNED_IN, names.PREFLIGHT_AZ_SUBSCRIPTION):
        failed = checks.get(before)
        if failed is not None and not failed.ok:
            return Item(text, "fail", f"not checked: `{before}` failed: {failed.detail}")
    option = "--tenant" if name == names.PREFLIGHT_AZ_TENANT else "--subscription"
    return Item(text, "none", f"`migrate preflight` ran without {option}")


def _ai_keys_item(data: MigratePreflightResult | None) -> Item:
    text = "AI provider API keys ready (OpenAI/Anthropic/Azure OpenAI)"
    if data is None:
        return Item(text, "none", "no `migrate preflight` result")
    keys = [c for c in data.checks if c.name.startswith(names.PREFLIGHT_AI_KEY)]
    if not keys:
        return Item(text, "none", "`migrate preflight` did not run this check")
    bad = [c for c in keys if not c.ok]
    if bad:
        return Item(text, "fail", f"{bad[0].name}: {bad[0].detail}")
    accepted = [c for c in keys if not c.detail.startswith("not configured")]
    if not accepted:
        return Item(
            text,
            "fail",
            f"no AI key configured (provider in force: {data.ai_provider}): games would come "
            "from the offline templates",
        )
    provider = data.ai_provider or "?"
    return Item(
        text,
        "pass",
        f"{', '.join(c.name.removeprefix(names.PREFLIGHT_AI_KEY) for c in accepted)} "
        f"accepted (in force: {provider}) — {_secs(max(c.seconds for c in accepted))}",
    )


def _database_preparation_section(r: Results) -> Section:
    """Pre-Migration "Database Preparation" (the backup items come from `db backup`)."""
    data = r.of(MigratePreflightResult)
    section = Section("Pre-Migration: Database Preparation", _backup_prep_items(r))
    text = "Tested MongoDB connectivity from new Azure region"
    mongodb = _checks(data).get(names.PREFLIGHT_MONGODB)
    if data is None:
        section.items.append(Item(text, "none", "no `migrate preflight` result"))
    elif not data.region:
        section.items.append(
            Item(
                text,
                "none",
                "`migrate preflight` ran outside Azure App Service (no REGION_NAME): run it in "
                "the new app's SSH console to measure from the new region",
            )
        )
    elif mongodb is None:
        section.items.append(Item(text, "none", "`migrate preflight` did not reach MongoDB"))
    else:
        where = f"from App Service {data.site or '?'} in {data.region}"
        section.items.append(_bool_item(text, mongodb.ok, f"{where}: {mongodb.detail}"))
    text = "Decided on migration strategy"
    if data is None or data.change_streams is None:
        section.items.append(
            _manual(
                text,
                "a person decides; `migrate preflight` measures whether change streams (and so "
                "`db sync`, zero downtime) are possible",
            )
        )
    else:
        measured = (
            "change streams open: continuous sync (`db sync`, zero downtime) is possible"
            if data.change_streams
            else "change streams unavailable: backup/restore with a write pause"
        )
        cosmos = "; Cosmos DB: deletes are caught by reconciling _id sets" if data.cosmos_db else ""
        section.items.append(
            Item(text, "manual", f"a person decides; measured: {measured}{cosmos}")
        )
    return section


def _testing_preparation_section(r: Results) -> Section:
    section = Section("Pre-Migration: Testing Preparation")
    section.items += [
        _manual(
            "Test user accounts identified for post-migration testing",
            "a person's choice; `migrate check` registers its own migration-check+UUID test user",
        ),
        _manual(
            "Test game prompts prepared",
            'a person\'s choice; `migrate check --prompt` takes one ("Create a simple snake game" '
            "by default)",
        ),
        _manual(
            "API test scripts ready",
            "the scripts are `paletai migrate check URL` (Phase 4) and `paletai migrate load URL` "
            "(Phase 6); their results fill Phases 4 and 6 below",
        ),
        _manual(
            "Health check URLs bookmarked",
            "bookmarks are a person's; `migrate check URL` checks URL/health and prints it, "
            "`migrate dns HOST` checks https://HOST/health",
        ),
    ]
    return section


def _communication_section(r: Results) -> Section:
    why = "people's decisions and messages, outside these commands"
    section = Section("Pre-Migration: Communication")
    section.items += [
        _manual(
            "Maintenance window scheduled (if needed)",
            f"{why}; `migrate rehearse` and `db cutover` measure the write pause to size it",
        ),
        _manual("Users notified of potential downtime", why),
        _manual("Status page prepared (if applicable)", why),
        _manual("Team members briefed on migration plan", why),
    ]
    return section


def _settings_section(r: Results) -> Section:
    data = r.settings
    inventory = r.of(MigrateInventoryResult)
    section = Section("Pre-Migration: Old Environment Documentation")
    if data is None:
        section.items.append(_inventory_export_item(inventory))
        section.items += _inventory_items(inventory)
        return section
    if isinstance(data, SettingsDiffResult):
        diff = data.diff
        added, removed, changed = len(diff.added), len(diff.removed), len(diff.changed)
        total = diff.unchanged + removed + changed
        evidence = (
            f"{total} settings in the old app's export; compared with the new app's: "
            f"{added} added, {removed} removed, {changed} changed, {diff.unchanged} unchanged"
        )
    else:
        evidence = f"{len(data.settings)} settings exported"
    section.items.append(Item("Exported current app settings to file", "pass", evidence))
    valid = [c for c in data.checks if c.name.startswith(names.SETTINGS_VALID)]
    if valid:
        section.items.append(
            Item(
                "New app settings accepted by PaletAI (values checked before applying)",
                "pass" if all(c.ok for c in valid) else "fail",
                valid[0].detail,
            )
        )
    section.items += _inventory_items(inventory)
    return section


def _inventory_export_item(data: MigrateInventoryResult | None) -> Item:
    text = "Exported current app settings to file"
    if data is None:
        return Item(text, "none", "no `settings` or `migrate inventory` result")
    return _from_check(text, data, "migrate inventory", names.INVENTORY_SETTINGS)


def _inventory_items(data: MigrateInventoryResult | None) -> list[Item]:
    """The rest of "Old Environment Documentation", as `migrate inventory` read it."""
    src = "migrate inventory"
    return [
        _from_check("Documented custom domains (if any)", data, src, names.INVENTORY_DOMAINS),
        _from_check("Noted current SKU/tier", data, src, names.INVENTORY_PLAN),
        _from_check("Recorded average daily traffic/metrics", data, src, names.INVENTORY_TRAFFIC),
        _from_check("Listed any third-party integrations", data, src, names.INVENTORY_INTEGRATIONS),
    ]


def _infra_section(r: Results) -> Section:
    data = r.of(DeployVerifyResult)
    section = Section("Phase 1: Verify Infrastructure")
    if data is not None:
        section.note = f"Resource group {data.target}" + (f", app {data.app}" if data.app else "")
    sku = data.expected_sku if data is not None else "B1"
    src = "deploy verify"
    section.items += [
        _from_check("Resource group created", data, src, names.INFRA_GROUP),
        _from_check(f"App Service Plan created ({sku} SKU)", data, src, names.INFRA_PLAN),
        _from_check("App Service created (running)", data, src, names.INFRA_APP),
        _from_check("Storage Account created", data, src, names.INFRA_STORAGE),
        _from_check(
            'Blob container "game-images" exists with public access',
            data,
            src,
            names.INFRA_CONTAINER,
        ),
        _from_check("Application Insights created", data, src, names.INFRA_INSIGHTS),
        _from_check(
            "Application Insights connection string set on the app",
            data,
            src,
            names.INFRA_INSIGHTS_SETTING,
        ),
        _from_check("Health check path /health", data, src, names.INFRA_HEALTH_CHECK),
    ]
    return section


def _deploy_infra_section(r: Results) -> Section:
    """Phase 1 "Deploy Infrastructure", from `deploy infra --json` (its --what-if run too)."""
    runs = r.all_of(DeployInfraResult)
    what_ifs = [run for run in runs if run.what_if]
    deployments = [run for run in runs if not run.what_if]
    section = Section("Phase 1: Deploy Infrastructure")
    section.items.append(
        _manual(
            "Navigated to deployment directory",
            "a shell's working directory; `paletai deploy infra` (in place of "
            "Deploy-PaletAI.ps1) takes the template with --template (deploy/main.bicep)",
        )
    )
    text = "Reviewed deployment script parameters"
    if what_ifs and what_ifs[-1].ok:
        shown = what_ifs[-1]
        section.items.append(
            Item(
                text,
                "pass",
                f"`deploy infra --what-if` on {shown.started_at}: "
                f"{len(shown.changes or [])} resources would change in {shown.resource_group}",
            )
        )
    elif what_ifs:
        section.items.append(Item(text, "fail", f"`deploy infra --what-if`: {what_ifs[-1].error}"))
    else:
        section.items.append(
            Item(text, "none", "no `deploy infra --what-if --json` result (ARM what-if)")
        )
    last = deployments[-1] if deployments else None
    if last is None:
        why = "no `deploy infra --json` result"
        section.items += [
            Item(name, "none", why)
            for name in (
                "Executed deployment",
                "Deployment completed successfully",
                "Saved deployment outputs file",
                "Recorded new App Service URL",
                "Recorded Storage Account name",
            )
        ]
        return section
    section.note = f"Deployment {last.deployment_name} in {last.resource_group} ({last.location})"
    ran = (
        f"`deploy infra` on {last.started_at}: {last.template} into {last.resource_group} "
        f"({last.location}), {_secs(last.seconds)}"
    )
    section.items += [
        Item("Executed deployment", "pass", ran),
        _bool_item(
            "Deployment completed successfully",
            last.ok,
            f"deployment {last.deployment_name} succeeded"
            if last.ok
            else f"failed: {last.error or 'no error recorded'}",
        ),
        Item(
            "Saved deployment outputs file",
            "pass" if last.ok and last.outputs_file else "none",
            f"`{last.outputs_file}`: {len(last.outputs)} outputs"
            if last.ok and last.outputs_file
            else "`deploy infra` ran without --outputs FILE",
        ),
        _output_item("Recorded new App Service URL", last, "webAppUrl"),
        _output_item("Recorded Storage Account name", last, "storageAccountName"),
    ]
    return section


def _output_item(text: str, run: DeployInfraResult, output: str) -> Item:
    value = run.outputs.get(output)
    if value:
        return Item(f"{text}: {value}", "pass", f"output {output} of {run.deployment_name}")
    return Item(text, "none", f"no output {output} in the `deploy infra` result")


def _deploy_app_section(r: Results) -> Section:
    """Phase 2 "Application Deployment": method B from `deploy app --json`; method A runs in
    GitHub, where its run is read; the verification from `deploy verify` and `migrate check`."""
    app = r.of(DeployAppResult)
    section = Section("Phase 2: Application Deployment")
    github = (
        "method A runs in GitHub Actions (.github/workflows/deploy.yml, with the "
        "AZURE_WEBAPP_PUBLISH_PROFILE secret): its run is read in GitHub, not from here"
    )
    if app is not None:
        github = f"method B was used (`deploy app`); {github}"
    section.items += [
        _manual("Method A: Retrieved publish profile from Azure Portal or CLI", github),
        _manual("Method A: Added AZURE_WEBAPP_PUBLISH_PROFILE to GitHub secrets", github),
        _manual("Method A: Triggered GitHub Actions workflow", github),
        _manual("Method A: Workflow completed successfully", github),
        _manual("Method A: Verified deployment in Azure Portal", github),
        _manual(
            "Method B: Cloned repository",
            "a clone on the operator's machine; `paletai deploy package` builds from it",
        ),
    ]
    if app is None:
        why = "no `deploy app --json` result"
        section.items += [
            Item("Method B: Created ZIP package (excluding .git, __pycache__, ...)", "none", why),
            Item("Method B: Deployed via Azure CLI (config-zip)", "none", why),
            Item("Method B: Deployment completed successfully", "none", why),
        ]
    else:
        digest = (app.package_sha256 or "?")[:12]
        section.note = f"App {app.app} in {app.resource_group}"
        section.items += [
            Item(
                "Method B: Created ZIP package (excluding .git, __pycache__, ...)",
                "pass" if app.package_bytes else "fail",
                f"`{app.package}`: {_n(app.package_bytes)} bytes, sha256 {digest}…"
                if app.package_bytes
                else f"`{app.package}` could not be read",
            ),
            Item(
                "Method B: Deployed via Azure CLI (config-zip)",
                "pass",
                f"`deploy app` on {app.started_at}, {_secs(app.seconds)}",
            ),
            _bool_item(
                "Method B: Deployment completed successfully",
                app.ok,
                "az webapp deployment source config-zip succeeded"
                if app.ok
                else f"failed: {app.error or 'no error recorded'}",
            ),
        ]
    verify, check = r.of(DeployVerifyResult), r.check
    section.items += [
        _from_check('App Service shows "Running" status', verify, "deploy verify", names.INFRA_APP),
        _from_check(
            "Accessed URL (API answers; /docs shows the Swagger UI)",
            check,
            "migrate check",
            names.HEALTH,
            names.DOCS_SWAGGER,
        ),
    ]
    text = "No deployment errors (Deployment Center)"
    if app is None:
        section.items.append(Item(text, "none", "no `deploy app --json` result"))
    else:
        evidence = "config-zip reported no error" if app.ok else f"config-zip: {app.error}"
        section.items.append(_bool_item(text, app.ok, evidence))
    return section


def _database_section(r: Results) -> Section:
    section = Section("Phase 3: Database Migration (Strategy C: continuous sync)")
    sync, cutover = r.sync, r.cutover
    if sync is None:
        section.items += [
            Item(text, "none", "no `db sync` result")
            for text in (
                "Set up MongoDB replication/sync",
                "Verified sync is working",
                "Monitored replication lag",
            )
        ]
    else:
        colls = sync.collections.values()
        copied = sum(c.copied for c in colls)
        events = sum(c.events for c in colls)
        section.items.append(
            Item(
                "Set up MongoDB replication/sync",
                "pass",
                f"{len(colls)} collections, {_n(copied)} documents copied, "
                f"{_n(events)} change events applied",
            )
        )
        section.items.append(
            _bool_item(
                "Verified sync is working",
                sync.caught_up and sync.failing == 0,
                f"caught up: {'yes' if sync.caught_up else 'no'}, {sync.failing} _ids still "
                f"failing ({sync.write_errors} writes refused, retried)",
            )
        )
        section.items.append(
            Item(
                "Monitored replication lag",
                "pass",
                f"largest lag at the end {max((c.lag for c in colls), default=0.0):.2f} s",
            )
        )
    if cutover is None:
        section.items.append(
            Item("Ready for cutover to new database", "none", "no `db cutover` result")
        )
    else:
        section.items.append(
            _bool_item(
                "Ready for cutover to new database",
                cutover.identical,
                f"writes stopped by {cutover.method}, drained and verified "
                f"{'identical' if cutover.identical else 'NOT identical'}; write pause "
                f"{_secs(cutover.write_pause_seconds)} (stop "
                f"{_secs(cutover.stop_call_seconds)}, drain "
                f"{_secs(cutover.drain_seconds)}, re-check "
                f"{_secs(cutover.verify_seconds)}; full verify before it "
                f"{_secs(cutover.pre_verify_seconds)})"
                + ("; reverse sync new → old started" if cutover.reverse else ""),
            )
        )
    section.items.append(_verified_item(r.verify, cutover))
    return section


def _other_strategies_section(r: Results) -> Section:
    """Phase 3 strategies A (same MongoDB) and B (backup/restore): the strategy used is the
    one whose items are ticked (C is the section above)."""
    section = Section("Phase 3: Database Migration (Strategies A and B)")
    preflight = r.of(MigratePreflightResult)
    section.items.append(
        _manual(
            "A: Verified connection string in new app service",
            "A: the new app's DB_PATH is the old one; `settings diff` lists DB_PATH as unchanged "
            "(Old Environment Documentation above)",
        )
    )
    section.items.append(
        _from_check(
            "A: Connection string is correct (connects, authenticates)",
            preflight,
            "migrate preflight",
            names.PREFLIGHT_MONGODB,
        )
    )
    section.items.append(
        _manual(
            "B: Stopped old app service (optional, for consistency)",
            "optional; `deploy stop-old` does it (`db cutover` stops writes without it)",
        )
    )
    backup, restore = r.of(DbBackupResult), r.of(DbRestoreResult)
    section.items.append(_full_backup_item("B: Created final backup from old database", backup))
    text = "B: Restored to new MongoDB instance"
    if restore is None or restore.dry_run:
        section.items.append(Item(text, "none", "no `db restore` result"))
    else:
        inserted = sum(c.inserted for c in restore.collections)
        errors = sum(c.errors for c in restore.collections)
        section.items.append(
            _bool_item(
                text,
                restore.ok,
                f"`db restore`: {_n(inserted)} documents into {len(restore.collections)} "
                f"collections, {errors} errors",
            )
        )
    text = "B: Verified data in new database"
    if restore is None or restore.dry_run:
        # Strategy C's section above reads the same `db verify`; one measurement, one tick.
        section.items.append(Item(text, "none", "no `db restore` result: strategy B not used"))
    else:
        verified = _verified_item(r.verify, None)
        section.items.append(Item(text, verified.status, verified.evidence))
    section.items += [
        _manual(
            "B: Updated app service connection string (if different)",
            "`settings apply` sets DB_PATH (its --json is kept, not read here)",
        ),
        _manual(
            "B: Restarted app service",
            "App Service restarts the app when its settings change; `migrate check` then finds "
            "it answering (Phase 4)",
        ),
    ]
    return section


def _verified_item(verify: DbVerifyResult | None, cutover: DbCutoverResult | None) -> Item:
    text = "Verified data in new database"
    if verify is not None:
        colls = verify.collections
        differ = sum(
            c.missing_in_target.count + c.extra_in_target.count + c.different.count for c in colls
        )
        counts = _counts([(c.name, c.source_count, c.target_count) for c in colls])
        return _bool_item(
            text,
            verify.identical,
            f"{counts}, {differ} documents differ, {len(colls)} collections compared "
            f"({'identical' if verify.identical else 'DIFFERENT'}, db verify "
            f"{_secs(verify.seconds)})",
        )
    if cutover is not None and cutover.collections:
        counts = _counts([(c.name, c.source, c.target) for c in cutover.collections])
        return _bool_item(
            text,
            cutover.identical,
            f"{counts}; verified {'identical' if cutover.identical else 'NOT identical'} "
            "by db cutover",
        )
    return Item(text, "none", "no `db verify` or `db cutover` result")


def _storage_section(r: Results) -> Section:
    section = Section("Phase 3: Images (blob storage)")
    if r.storage is None:
        section.items.append(
            Item("Images copied to the new storage account", "none", "no `storage copy` result")
        )
        return section
    copy, rewrite = r.storage.copy_, r.storage.rewrite
    section.items.append(
        _bool_item(
            "Images copied to the new storage account",
            copy.failed == 0,
            f"{_n(copy.total)} blobs: {_n(copy.copied)} copied, "
            f"{_n(copy.skipped)} already identical, {copy.failed} failed "
            f"(length and MD5 verified)",
        )
    )
    if copy.destination_public is not None:
        section.items.append(
            _bool_item(
                'Blob container "game-images" exists with public access',
                copy.destination_public,
                "public read on the destination"
                if copy.destination_public
                else "destination container is private",
            )
        )
    if rewrite is not None:
        section.items.append(
            _bool_item(
                "Games point at the new storage account",
                rewrite.missing == 0,
                f"{_n(rewrite.rewritten)} image URLs rewritten, "
                f"{_n(rewrite.already)} already new, {rewrite.missing} left on the old account",
            )
        )
    else:
        section.items.append(
            Item(
                "Games point at the new storage account", "none", "copy ran without --rewrite-urls"
            )
        )
    return section


def _check_section(r: Results) -> Section:
    data = r.check
    section = Section("Phase 4: Configuration Verification")
    if data is not None:
        section.note = f"Against {data.target}"
    src = "migrate check"
    section.items += [
        _from_check(
            'Health endpoint: 200 OK, "status", "database", "api" healthy', data, src, names.HEALTH
        ),
        _from_check("Swagger UI loads correctly", data, src, names.DOCS_SWAGGER),
        _from_check("All endpoints visible", data, src, names.DOCS_OPENAPI),
        _from_check("Registered new test user via /auth/register", data, src, names.AUTH_REGISTER),
        _from_check(
            "Logged in via /auth/login, JWT token received",
            data,
            src,
            names.AUTH_LOGIN_JSON,
            names.AUTH_LOGIN_FORM,
        ),
        _from_check("Created game via /games: task ID received", data, src, names.GAMES_CREATE),
        _from_check(
            "Polled task status until complete: game created", data, src, names.GAMES_GENERATION
        ),
        _from_check("Verified game has image URL; image loads", data, src, names.IMAGE_COVER),
        _from_check("Game feed includes the created game", data, src, names.FEED_LISTED),
        _from_check("Game is playable (sandboxed HTML)", data, src, names.PLAY_SANDBOXED),
        _from_check("Liked game (idempotent)", data, src, names.LIKES),
        _from_check(
            "Subscribed to notifications via /notifications/subscribe",
            data,
            src,
            names.NOTIFICATIONS,
        ),
        _manual(
            "Token stored",
            "the JWT is a credential: `migrate check` uses it and never writes it down",
        ),
        Item(
            f"Game ID: {data.game_id}" if data is not None and data.game_id else "Game ID",
            "pass" if data is not None and data.game_id else "none",
            "the game `migrate check` created" if data is not None else "no `migrate check` result",
        ),
        _from_check(
            "At least one blob exists in game-images (the cover was fetched from it)",
            data,
            src,
            names.IMAGE_COVER,
        ),
        _manual(
            "Listed blobs in Azure Portal → Storage Account → game-images",
            "a portal view; `storage copy` lists and counts the container's blobs (Phase 3)",
        ),
        _from_check("All game fields populated correctly", data, src, names.FEED_LISTED),
        _manual(
            "OneSignal dashboard shows subscription (if applicable)",
            "OneSignal's dashboard; `migrate preflight` checks the OneSignal credentials",
        ),
    ]
    return section


def _traffic(r: Results) -> TrafficFigures | None:
    return r.rehearse.traffic if r.rehearse is not None else None


def _dns_section(r: Results) -> Section:
    data = r.dns
    section = Section("Phase 5: DNS Cutover")
    if data is not None:
        section.note = f"Host {data.target}"
    src = "migrate dns"
    domain = r.of(DeployDomainResult)
    section.items.append(
        _from_check(
            "Custom domain added to new App Service",
            domain,
            "deploy domain add",
            names.DOMAIN_HOSTNAME,
        )
    )
    section.items += _ttl_items(data)
    section.items += [
        _from_check(
            "Updated DNS CNAME record, saved: the record points at the new app",
            data,
            src,
            names.DNS_POINTS_AT_TARGET,
        ),
        _manual(
            "Timestamp of DNS update",
            "the DNS provider's change log holds it"
            + (f"; `migrate dns` saw the record in place at {data.started_at}" if data else ""),
        ),
        _from_check("Tested with nslookup", data, src, names.DNS_RESOLVE),
        _from_check(
            "Tested with curl …/health: response from new server confirmed",
            data,
            src,
            names.HTTP_ANSWERS_ON_HOST,
        ),
    ]
    section.items.append(_certificate_item(domain))
    traffic = _traffic(r)
    if traffic is not None and traffic.by_target:
        by = traffic.by_target
        section.items.append(
            _bool_item(
                "Traffic moved to the new app (a local rehearsal's DNS cutover)",
                by.get("new", 0) > 0,
                f"live requests: {_n(by.get('old'))} to the old app, then "
                f"{_n(by.get('new'))} to the new one",
            )
        )
    return section


def _ttl_items(data: MigrateDnsResult | None) -> list[Item]:
    """ "Lowered DNS TTL to 300 seconds" and "Old TTL has expired", from the TTL the resolver
    gives the record: a caching resolver counts a cached record's TTL down from its old value,
    so one at most the lowered TTL means no older, longer one is cached there."""
    lowered, expired = "Lowered DNS TTL to 300 seconds (24+ hours before)", "Old TTL has expired"
    if data is not None and names.DNS_TTL not in _checks(data):
        why = data.note or "`migrate dns` read no TTL"
        return [Item(lowered, "none", why), Item(expired, "none", why)]
    return [
        _from_check(lowered, data, "migrate dns", names.DNS_TTL),
        _from_check(expired, data, "migrate dns", names.DNS_TTL),
    ]


def _certificate_item(domain: DeployDomainResult | None) -> Item:
    """The managed certificate, its binding, and an HTTPS GET that verified it."""
    text = "SSL certificate working"
    item = _from_check(
        text,
        domain,
        "deploy domain add",
        names.DOMAIN_CERTIFICATE,
        names.DOMAIN_BINDING,
        names.HTTP_ANSWERS_ON_HOST,
    )
    if item.status != "pass":
        return item
    https = _checks(domain).get(names.HTTP_ANSWERS_ON_HOST)
    if https is None or "certificate valid" not in https.detail:
        return Item(text, "none", "certificate bound, but no HTTPS request checked it")
    bound = _checks(domain)[names.DOMAIN_CERTIFICATE].detail
    return Item(text, "pass", f"{bound}; {https.detail}")


def _monitoring_section(r: Results) -> Section:
    """Phase 6 "Application Insights" (`migrate insights`) and "Log Streaming" (`migrate logs`)."""
    insights, logs = r.of(MigrateInsightsResult), r.of(MigrateLogsResult)
    section = Section("Phase 6: Monitoring & Verification (Application Insights, log streaming)")
    if insights is not None:
        section.note = f"Application Insights of {insights.target}, last {insights.minutes} min"
    src = "migrate insights"
    section.items += [
        _from_check(
            "Application Insights found for the app (read through its API, not the portal)",
            insights,
            src,
            names.INSIGHTS_COMPONENT,
        ),
        _from_check("Live Metrics shows active requests", insights, src, names.INSIGHTS_REQUESTS),
        _from_check("No errors or exceptions appearing", insights, src, names.INSIGHTS_NO_ERRORS),
        _from_check(
            f"Response times acceptable (<{RESPONSE_LIMIT_SECONDS:g} seconds, p95)",
            insights,
            src,
            names.INSIGHTS_RESPONSE_TIME,
            prefix=True,
        ),
    ]
    src = "migrate logs"
    if logs is None:
        section.items.append(Item("Started log stream", "none", "no `migrate logs` result"))
    else:
        section.items.append(
            Item(
                "Started log stream",
                "pass",
                f"az webapp log tail on {logs.target} for {_secs(logs.seconds_listened)}: "
                f"{_n(logs.lines)} lines",
            )
        )
    section.items += [
        _from_check("Logs show normal activity", logs, src, names.LOGS_ACTIVITY),
        _from_check("No error messages", logs, src, names.LOGS_NO_ERRORS),
        _from_check("Database connections successful", logs, src, names.LOGS_DATABASE),
    ]
    return section


def _load_section(r: Results) -> Section:
    data = r.load
    section = Section("Phase 6: Monitoring & Verification (performance testing)")
    src = "migrate load"
    section.items += [
        _from_check("Created 5-10 test games", data, src, names.GAMES_CREATE, prefix=True),
        _from_check("Test games generated", data, src, names.GAMES_GENERATION),
        _from_check("All games have images", data, src, names.GAMES_IMAGES),
        _from_check("Feed loads quickly", data, src, names.LOAD_FEED),
        _from_check("No timeouts or errors", data, src, names.LOAD_PREFIX, prefix=True),
        _response_item(data),
    ]
    return section


def _response_item(data: MigrateLoadResult | None) -> Item:
    text = f"Response times < {RESPONSE_LIMIT_SECONDS:g} seconds average"
    if data is None:
        return Item(text, "none", "no `migrate load` result")
    figures = data.load
    if figures is None or not figures.requests:
        return Item(text, "none", "`migrate load` made no read requests")
    return _bool_item(
        text,
        figures.mean_ms < RESPONSE_LIMIT_SECONDS * 1000,
        f"{figures.mean_ms:.0f} ms over {_n(figures.requests)} requests "
        f"(p95 {figures.p95_ms} ms, p99 {figures.p99_ms} ms)",
    )


def _traffic_section(r: Results) -> Section | None:
    if r.rehearse is None:
        return None
    traffic = r.rehearse.traffic
    section = Section("Live traffic during the move (migrate rehearse)")
    if traffic is None:
        section.items.append(Item("Live traffic recorded", "none", "no traffic figures"))
        return section
    lost = traffic.lost_writes
    section.items.append(
        _bool_item(
            "No acknowledged write lost",
            lost == 0,
            f"{_n(traffic.acknowledged_games)} games and "
            f"{_n(traffic.acknowledged_likes)} likes acknowledged (2xx) by old or new, "
            f"{lost} missing on the new side (checked by id)",
        )
    )
    unexpected, outside = traffic.unexpected_errors, traffic.refused_outside_pause
    where = ", all within the pause" if not outside else f", {outside} of them outside the pause"
    section.items.append(
        _bool_item(
            "Writes refused only during the pause (503 with Retry-After), never another error",
            unexpected == 0 and not outside,
            f"{_n(traffic.maintenance_503)} writes refused with 503 + Retry-After{where}; "
            f"{unexpected} other errors, over {_n(traffic.requests)} requests "
            f"({_n(traffic.reads)} reads, {_n(traffic.read_errors)} failed)",
        )
    )
    pause, window = traffic.pause_window_seconds, traffic.refused_window_seconds
    if pause is not None:
        section.items.append(
            Item(
                "Write pause as the users saw it",
                "pass",
                f"maintenance on at the old app to writes open on the new one {_secs(pause)}"
                + (f" (first to last refused write {_secs(window)})" if window is not None else ""),
            )
        )
    return section


def _documentation_section(r: Results) -> Section:
    why = "documents outside what these commands read; the person who updates them ticks them"
    return Section(
        "Post-Migration: Documentation Updates",
        [
            _manual("Updated internal documentation with new URLs", why),
            _manual("Updated API documentation (if separate)", why),
            _manual("Updated README with new deployment info", why),
            _manual("Documented lessons learned", why),
        ],
    )


def _optimization_section(r: Results) -> Section:
    data = r.of(DeployVerifyResult)
    now = f" (the plan is {data.plan_sku} now)" if data is not None and data.plan_sku else ""
    return Section(
        "Post-Migration: Optimization",
        [
            _manual(
                "Reviewed Application Insights metrics",
                "a person reads the production metrics over days; `deploy verify` only shows "
                "that Application Insights exists and the app reports to it",
            ),
            _manual(
                "Identified any performance issues",
                "a judgement on production traffic; `migrate load` measures a test load only",
            ),
            _manual(
                "Adjusted SKU if needed (scale up/down)",
                "a decision on weeks of real load and cost" + now,
            ),
            _manual(
                "Configured auto-scaling rules (if S1+)",
                "B1 has no autoscale, and the kit deploys no autoscale rules to read back",
            ),
        ],
    )


def _cost_section(r: Results) -> Section:
    data = r.of(DeployVerifyResult)
    src = "deploy verify"
    return Section(
        "Post-Migration: Cost Management",
        [
            _from_check(
                "Set up cost alerts in Azure (budget notifications)",
                data,
                src,
                names.COST_BUDGET_NOTIFICATIONS,
            ),
            _from_check(
                "Configured budget: $50/month (or as needed)", data, src, names.COST_BUDGET
            ),
            _manual(
                "Scheduled monthly cost review",
                "a meeting in people's calendars; nothing in Azure records it",
            ),
        ],
    )


def _alerts_section(r: Results) -> Section:
    data = r.of(DeployVerifyResult)
    src = "deploy verify"
    return Section(
        "Post-Migration: Monitoring & Alerts",
        [
            _from_check("Alerts reach someone (action group)", data, src, names.ALERT_ACTION_GROUP),
            _from_check("Alert: HTTP 5xx errors > 5 in 5 minutes", data, src, names.ALERT_HTTP_5XX),
            _from_check("Alert: Response time > 5 seconds", data, src, names.ALERT_RESPONSE_TIME),
            _from_check(
                "Alert: Availability < 99% (availability test of /health)",
                data,
                src,
                names.ALERT_AVAILABILITY,
                names.ALERT_WEB_TEST,
            ),
            _from_check("Alert: CPU > 80% for 10 minutes", data, src, names.ALERT_CPU),
            _from_check("Alert: Memory > 80% for 10 minutes", data, src, names.ALERT_MEMORY),
            _from_check("Alert: Disk space > 85%", data, src, names.ALERT_DISK),
            _manual(
                "Tested alert delivery (email/SMS)",
                "only the receiver's inbox or phone shows that the message arrived "
                "(`az monitor action-group test-notifications create` sends a test one)",
            ),
        ],
    )


def _security_section(r: Results) -> Section:
    data = r.of(DeployVerifyResult)
    src = "deploy verify"
    return Section(
        "Post-Migration: Security Hardening",
        [
            _from_check(
                "Reviewed IP restrictions (if needed)", data, src, names.SECURITY_IP_RESTRICTIONS
            ),
            _from_check(
                "Enabled managed identities (Storage Blob Data Contributor on the account)",
                data,
                src,
                names.SECURITY_IDENTITY,
                names.SECURITY_BLOB_ROLE,
            ),
            _manual(
                "Rotated API keys (if required)",
                "the keys live with their providers (OpenAI, Anthropic, OneSignal, MongoDB); "
                "nothing here can tell when one was last rotated",
            ),
            _from_check("Reviewed CORS settings", data, src, names.SECURITY_CORS),
            _from_check("Ensured HTTPS only is enforced", data, src, names.SECURITY_HTTPS_ONLY),
        ],
    )


def _success_section(r: Results) -> Section:
    check, traffic = r.check, _traffic(r)
    section = Section("Success Criteria")
    section.items.append(
        _from_check("Health endpoint returns 200 OK", check, "migrate check", names.HEALTH)
    )
    if check is None:
        section.items.append(
            Item("All API endpoints functional", "none", "no `migrate check` result")
        )
    else:
        failed = [c.name for c in check.checks if not c.ok]
        section.items.append(
            _bool_item(
                "All API endpoints functional",
                bool(check.checks) and not failed,
                f"{len(check.checks) - len(failed)}/{len(check.checks)} Phase 4 checks passed"
                + (f" (failed: {', '.join(failed)})" if failed else ""),
            )
        )
    health = _checks(check).get(names.HEALTH)
    if health is not None:
        db_item = _bool_item(
            "Database connectivity confirmed", health.ok, f"/health: {health.detail}"
        )
    elif r.verify is not None or r.cutover is not None:
        db_item = Item("Database connectivity confirmed", "pass", "db verify/cutover connected")
    else:
        db_item = Item("Database connectivity confirmed", "none", "no result")
    section.items.append(db_item)
    section.items.append(
        _from_check("Game creation working", check, "migrate check", names.GAMES_GENERATION)
    )
    image = _checks(check).get(names.IMAGE_COVER)
    if check is None or image is None:
        section.items.append(
            Item("Image upload to Blob Storage working", "none", "no `migrate check` image check")
        )
    else:
        on_blob = (check.image_location or "").startswith(("Azure Blob", "Azurite"))
        section.items.append(
            _bool_item("Image upload to Blob Storage working", image.ok and on_blob, image.detail)
        )
    insights = r.of(MigrateInsightsResult)
    if insights is not None:
        section.items.append(
            _from_check(
                "No errors in Application Insights",
                insights,
                "migrate insights",
                names.INSIGHTS_NO_ERRORS,
            )
        )
    else:
        section.items.append(
            Item(
                "No errors in Application Insights",
                "none",
                "no `migrate insights` result"
                + (
                    f" (clients saw {traffic.unexpected_errors} unexpected errors)"
                    if traffic is not None
                    else ""
                ),
            )
        )
    section.items.append(_response_item(r.load))
    section.items.append(
        _from_check(
            "Users can log in and use the app",
            check,
            "migrate check",
            names.AUTH_LOGIN_JSON,
            names.FEED_LISTED,
            names.LIKES,
        )
    )
    section.items.append(
        Item("No critical bugs reported", "none", "reported by people, not measured")
    )
    section.items.append(Item("Cost is within expected range", "none", "not measured"))
    section.items.append(_downtime_item(r.cutover, traffic))
    return section


def _downtime_item(cutover: DbCutoverResult | None, traffic: TrafficFigures | None) -> Item:
    text = f"Total Downtime (goal: < {DOWNTIME_GOAL_MINUTES:g} minutes)"
    seconds: float | None = None
    parts: list[str] = []
    if cutover is not None and cutover.ready_at:
        seconds = cutover.write_pause_seconds
        parts.append(f"write pause measured by db cutover: {seconds:.1f} s")
    reads_ok = False
    if traffic is not None:
        window = traffic.pause_window_seconds
        if window is not None:
            seconds = max(seconds or 0.0, window)
            parts.append(f"writes paused for live traffic from old to new app: {window:.1f} s")
        reads_ok = bool(traffic.reads) and not traffic.read_errors
    if seconds is None:
        return Item(text, "none", "no `db cutover` result")
    minutes = f"{seconds / 60:.2f}" if seconds < 60 else f"{seconds / 60:.1f}"
    return _bool_item(
        text,
        seconds / 60 < DOWNTIME_GOAL_MINUTES,
        f"{minutes} minutes ({'; '.join(parts)})"
        + ("; every live read answered" if reads_ok else ""),
    )


# ---------------------------------------------------------------------------------------------
# Backups (`db backup [--to-blob]`) and Phase 7 (`deploy decommission`)

BACKUP_WORKFLOW = Path(".github/workflows/backup.yml")
RESTORE_DOCS = Path("docs/db-operations.md")
RESTORE_DOCS_SECTION = "## Restoring a backup from Blob Storage"


def _repository_file(relative: Path) -> Path | None:
    """`relative` in the repository the report runs in (cwd or above), or beside this code."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents, Path(__file__).resolve().parents[4]):
        if (folder / relative).is_file():
            return folder / relative
    return None


def _backup_evidence(data: DbBackupResult) -> str:
    where = (
        f"blob {data.blob.name}/ (finished {data.blob.finished_at})"
        if data.blob
        else (f"`{data.directory}`")
    )
    return (
        f"{data.database}: {len(data.collections)} collections, {_n(data.documents)} documents, "
        f"{data.bytes / 1e6:.1f} MB -> {where}"
    )


def _backup_prep_items(r: Results) -> list[Item]:
    """Pre-Migration "Database Preparation": the backup and its tested restore."""
    data = r.of(DbBackupResult)
    items = [_full_backup_item("Full MongoDB backup created", data)]
    tested = "Backup verified (can restore to test instance)"
    restore = r.of(DbRestoreResult)
    if data is not None and data.test_restore is not None:
        items.append(_test_restore_item(tested, data.test_restore))
    elif restore is not None and not restore.dry_run:
        inserted = sum(c.inserted for c in restore.collections)
        source = f" of blob backup {restore.from_blob}" if restore.from_blob else ""
        items.append(
            _bool_item(
                tested,
                restore.ok,
                f"`db restore`{source}: {_n(inserted)} documents into "
                f"{len(restore.collections)} collections, "
                f"{sum(c.errors for c in restore.collections)} errors",
            )
        )
    else:
        items.append(
            Item(
                tested,
                "none",
                "no test restore: `db backup --to-blob ... --test-restore URI` (or `db restore`)",
            )
        )
    return items


def _full_backup_item(text: str, data: DbBackupResult | None) -> Item:
    """A backup of the whole database was written (not a dry run, not a part of it)."""
    if data is None:
        return Item(text, "none", "no `db backup` result")
    if data.dry_run:
        return Item(text, "none", "`db backup --dry-run` only: nothing was written")
    if part := _partial_backup(data):
        return Item(text, "none", f"the last `db backup` was partial ({part}): not full")
    return Item(text, "pass", _backup_evidence(data))


def _partial_backup(data: DbBackupResult) -> str:
    """What made a backup hold less than the whole database ("" for a full one)."""
    parts = []
    if data.collection:
        parts.append(f"--collection {data.collection}")
    if data.ns_exclude:
        parts.append("--ns-exclude " + " ".join(data.ns_exclude))
    if data.query:
        parts.append(f"--query {data.query}")
    return ", ".join(parts)


def _test_restore_item(text: str, trial: RestoreTestFigures) -> Item:
    differ = (
        "identical to the source"
        if trial.verify_identical
        else f"{_n(trial.documents_differing)} documents differ from the source now"
    )
    return _bool_item(
        text,
        trial.ok,
        f"{_n(trial.restored_documents)} documents restored into scratch database "
        f"{trial.database} on {trial.host}; sha256 and counts matched the manifest: "
        f"{'yes' if trial.matched_manifest else 'no'}; verify: {differ}; scratch "
        f"{'dropped' if trial.dropped else 'NOT dropped'}"
        + (f"; {trial.problem}" if trial.problem else ""),
    )


def _backup_strategy_section(r: Results) -> Section:
    section = Section("Post-Migration: Backup Strategy")
    data = r.of(DbBackupResult)
    blob = data if data is not None and data.blob is not None else None
    workflow = _repository_file(BACKUP_WORKFLOW)
    text = "Set up automated MongoDB backups"
    if workflow is None:
        section.items.append(Item(text, "none", f"no `{BACKUP_WORKFLOW}` in this repository"))
    elif blob is None or blob.blob is None:
        section.items.append(
            Item(text, "none", f"`{BACKUP_WORKFLOW}` is there; no `db backup --to-blob` result")
        )
    else:
        cron = re.search(r"cron:\s*\"([^\"]+)\"", workflow.read_text(encoding="utf-8"))
        when = f" (cron `{cron.group(1)}`)" if cron else ""
        section.items.append(
            Item(
                text,
                "pass",
                f"`{BACKUP_WORKFLOW}` runs `db backup --to-blob`{when}; last: "
                f"{blob.blob.name} in container {blob.blob.container} "
                f"(finished {blob.blob.finished_at})",
            )
        )
    text = "Documented restore procedure"
    docs = _repository_file(RESTORE_DOCS)
    if docs is not None and RESTORE_DOCS_SECTION in docs.read_text(encoding="utf-8"):
        where = f'`{RESTORE_DOCS}`, section "{RESTORE_DOCS_SECTION.lstrip("# ")}"'
        if data is None:
            # The page alone proves nothing about this migration's backups.
            section.items.append(Item(text, "none", f"{where}; no `db backup` result"))
        else:
            section.items.append(Item(text, "pass", where))
    else:
        section.items.append(
            _manual(text, f"`{RESTORE_DOCS}` is not beside the results (the report ran elsewhere)")
        )
    text = "Tested backup restoration"
    if blob is not None and blob.test_restore is not None:
        section.items.append(_test_restore_item(text, blob.test_restore))
    else:
        section.items.append(Item(text, "none", "no `db backup --to-blob --test-restore` result"))
    text = "Configured retention policy"
    if blob is not None and blob.retention is not None:
        kept = blob.retention
        gone = len(kept.deleted) + len(kept.deleted_incomplete)
        section.items.append(
            Item(
                text,
                "pass",
                f"newest backup per day for {kept.keep_daily} days and per ISO week for "
                f"{kept.keep_weekly} weeks: {len(kept.kept)} kept, {gone} deleted at the last run",
            )
        )
    else:
        section.items.append(
            Item(text, "none", "no `db backup --to-blob --keep-daily/--keep-weekly` result")
        )
    return section


def _decommission_item(
    text: str, stage: str, results: list[DeployDecommissionResult], *, backup: bool = False
) -> Item:
    done = [d for d in results if d.stage == stage and d.done]
    if done:
        last = done[-1]
        forced = ", forced before the checklist's wait" if last.forced else ""
        if backup:
            return Item(
                text,
                "pass" if last.backup else "none",
                f"{last.backup} (finished {last.backup_finished_at}), checked before "
                f"`az group delete` on {last.at}"
                if last.backup
                else "no backup recorded",
            )
        return Item(
            text,
            "pass",
            f"`{last.az_lines[-1] if last.az_lines else stage}` on {last.at}, "
            f"{last.days_since_cutover:.1f} days after the cutover{forced}",
        )
    tried = [d for d in results if d.stage == stage]
    if tried:
        last = tried[-1]
        why = "dry run only" if last.dry_run and not last.refused else f"refused: {last.refused}"
        return Item(text, "none", f"`deploy decommission --stage {stage}` on {last.at}: {why}")
    return Item(text, "none", f"no `deploy decommission --stage {stage}` result")


STABLE_MINUTES = 24 * 60


def _stability_item(text: str, r: Results, *check_names: str) -> Item:
    """From a `migrate insights` result over a whole day (the checklist's 24-48 h), else manual."""
    insights = r.of(MigrateInsightsResult)
    if insights is None:
        return _manual(
            text,
            "judged over 24-48 hours on the new side; no `migrate insights` result "
            f"(`migrate insights --minutes {STABLE_MINUTES}` a day after the cutover measures it)",
        )
    if insights.minutes < STABLE_MINUTES:
        return _manual(
            text,
            f"judged over 24-48 hours; `migrate insights` covered {insights.minutes} minutes "
            f"(run it with --minutes {STABLE_MINUTES} a day after the cutover)",
        )
    return _from_check(text, insights, "migrate insights", *check_names, prefix=True)


def _production_testing_section(r: Results) -> Section:
    """Phase 6 "Production Testing (with real users)": real accounts and real judgement."""
    why = (
        "a real user's account and judgement; `migrate check` walks the same steps (log in, "
        "create, feed, like) with its own test user: Phase 4 above"
    )
    return Section(
        "Phase 6: Production Testing (with real users)",
        [
            _manual(text, why)
            for text in (
                "Logged in with production user account",
                "Created game",
                "Viewed feed",
                "Liked game",
                "All features working",
                "User feedback",
            )
        ],
    )


def _rollback_section(r: Results) -> Section:
    """The Rollback Plan: steps taken only when something went wrong, by a person's decision."""
    only_if = "done only if the migration is rolled back, on a person's decision"
    return Section(
        "Rollback Plan (If Needed)",
        [
            _manual("Reverted DNS CNAME to old app service", f"{only_if}; the DNS provider's"),
            _manual(
                "Waited for DNS propagation (5-10 minutes)",
                f"{only_if}; `migrate dns HOST --expect OLD_APP.azurewebsites.net` checks it",
            ),
            _manual(
                "Started old app service",
                f"{only_if}; `paletai deploy start --name OLD_APP --resource-group RG` does it",
            ),
            _manual(
                "Verified old service working", f"{only_if}; `migrate check OLD_URL` checks it"
            ),
            _manual("Notified users of issue", f"{only_if}; people's messages"),
            _manual(
                "Restored from backup to old database",
                f"{only_if}; `db restore` (or `db restore --from-blob`) does it",
            ),
            _manual("Verified data integrity", f"{only_if}; `db verify` checks it"),
            _manual(
                "Updated old app service connection string",
                f"{only_if}; `settings apply` does it",
            ),
            _manual("Restarted old app service", f"{only_if}; `deploy start` does it"),
            _manual("Investigated root cause", f"{only_if}; people's work"),
            _manual("Fixed issues in new environment", f"{only_if}; people's work"),
            _manual("Scheduled new migration date", f"{only_if}; people's decision"),
            _manual("Documented what went wrong", f"{only_if}; people's writing"),
        ],
    )


def _sign_off_section(r: Results) -> Section:
    """Sign-Off: a person signs; this report is what they sign on."""
    who = "a person signs off, on this report's ticks"
    return Section(
        "Sign-Off",
        [
            _manual("Technical lead sign-off", who),
            _manual("Migration completed successfully", who),
            _manual("All systems operational", f"{who} (Success Criteria above)"),
            _manual("Documentation updated", f"{who} (Post-Migration: Documentation Updates)"),
            _manual(
                "Old environment scheduled for decommission",
                f"{who}; `deploy decommission --stage ... --cutover-at ISO_TIME` enforces the "
                "waits (Phase 7)",
            ),
        ],
    )


def _decommission_section(r: Results) -> Section:
    results = r.all_of(DeployDecommissionResult)
    people = "judged by people over the 24-48 hours on the new side"
    return Section(
        "Phase 7: Old Environment Decommission",
        [
            _stability_item(
                "Confirmed new environment is stable",
                r,
                names.INSIGHTS_REQUESTS,
                names.INSIGHTS_NO_ERRORS,
            ),
            _manual("No critical issues reported", people),
            _stability_item(
                "Metrics look normal", r, names.INSIGHTS_NO_ERRORS, names.INSIGHTS_RESPONSE_TIME
            ),
            _manual("Users are happy", people),
            _decommission_item("Stopped old app service", "stop", results),
            _manual(
                "Monitored for any issues (users should be on new service)",
                f"{people}; `migrate insights --app OLD_APP` shows whether requests still reach "
                "the old app",
            ),
            _manual("No complaints received", people),
            _manual("After 7 days: confirmed everything is working perfectly", people),
            _manual(
                "Exported any remaining logs/data from old environment",
                "what is worth keeping is a person's call",
            ),
            _decommission_item("Deleted old app service", "delete-app", results),
            _decommission_item(
                "Final backup of old environment", "delete-group", results, backup=True
            ),
            _decommission_item("Deleted old resource group", "delete-group", results),
        ],
    )


SECTIONS: tuple[Callable[[Results], Section | None], ...] = (
    _preflight_section,
    _settings_section,
    _database_preparation_section,
    _testing_preparation_section,
    _communication_section,
    _deploy_infra_section,
    _infra_section,
    _deploy_app_section,
    _database_section,
    _other_strategies_section,
    _storage_section,
    _check_section,
    _dns_section,
    _monitoring_section,
    _load_section,
    _production_testing_section,
    _traffic_section,
    _decommission_section,
    _documentation_section,
    _optimization_section,
    _cost_section,
    _alerts_section,
    _security_section,
    _backup_strategy_section,
    _rollback_section,
    _success_section,
    _sign_off_section,
)


@dataclass
class Report:
    title: str
    sections: list[Section]
    results: Results

    @property
    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    def count(self, status: Status) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def summary(self) -> str:
        passed, failed, none = self.count("pass"), self.count("fail"), self.count("none")
        manual = self.count("manual")
        if failed:
            head = f"{failed} failed"
        elif passed:
            head = "all passed"
        else:
            head = "nothing measured"
        tail = f", {manual} not measurable from here" if manual else ""
        return f"{head}: {passed} passed, {failed} failed, {none} not measured{tail}"

    @property
    def ok(self) -> bool:
        return self.count("fail") == 0 and self.count("pass") > 0

    @property
    def failed_lines(self) -> list[str]:
        """Each failed item as its report line, secrets masked: what to look at first."""
        return [mask_secrets(item.line()) for item in self.items if item.status == "fail"]

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", f"**Result: {self.summary}**", ""]
        lines.append(
            "Legend: [x] measured and passed, [!] measured and failed, [ ] not measured, "
            "[-] not measurable from here (a person checks it; the reason is given)."
        )
        if self.results.files:
            used = ", ".join(f"`{name}`" for name in sorted(self.results.files.values()))
            lines.append(f"From: {used}.")
        for why in self.results.unreadable:
            lines.append(f"Unreadable (ignored): {why}.")
        rehearse = self.results.rehearse
        if rehearse is not None:
            lines.append(
                f"Migration duration (rehearsal): start {rehearse.started_at}, "
                f"total {rehearse.seconds / 60:.1f} minutes."
            )
        for section in self.sections:
            lines += ["", f"## {section.title}", ""]
            if section.note:
                lines += [section.note, ""]
            lines += [item.line() for item in section.items]
        lines += [
            "",
            "Every item of the migration checklist is above, measured or marked [-] with why; "
            "the checklist's Notes and its start and end times are a person's.",
            "",
        ]
        return mask_secrets("\n".join(lines))


def build_report(directory: Path, title: str = "PaletAI migration report") -> Report:
    results = load_results(directory)
    sections = [s for build in SECTIONS if (s := build(results)) is not None]
    return Report(title, sections, results)


def write_report(
    directory: Path, out: Path | None = None, title: str = "PaletAI migration report"
) -> tuple[Report, Path]:
    report = build_report(directory, title)
    path = out if out is not None else directory / "report.md"
    path.write_text(report.markdown(), encoding="utf-8")
    return report, path
