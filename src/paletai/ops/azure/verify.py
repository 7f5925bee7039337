"""`paletai deploy verify`: the checklist's Phase 1 "Verify Infrastructure" and the resources of
its post-migration sections (alerts, budget, identity, CORS, IP restrictions), read back from
Azure one item at a time through the `az` CLI (read-only calls only).

What is expected is what `deploy/main.bicep` creates; a missing resource fails its line with
what to run (`paletai deploy infra ...`), a wrong value shows the real one.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.checks import names
from paletai.ops.checks.phase4 import Check, CheckFailed, CheckReport
from paletai.ops.errors import OpsError

# Built-in role "Storage Blob Data Contributor" (the same id in every subscription).
BLOB_DATA_CONTRIBUTOR_ID = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_DATA_CONTRIBUTOR = "Storage Blob Data Contributor"
HEALTH_CHECK_PATH = "/health"
SITES = "microsoft.web/sites"
COMPONENTS = "microsoft.insights/components"
WEB_TESTS = "microsoft.insights/webtests"


class VerifyUsageError(OpsError):
    """The operator must say more (which app); exit 2."""


@dataclass(frozen=True)
class AlertSpec:
    """A metric alert of the checklist: the metric it watches and its threshold there."""

    check: str
    what: str
    metric: str
    operator: str
    threshold: float | None  # None: depends on the plan (disk quota), not checked


ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(names.ALERT_HTTP_5XX, "HTTP 5xx > 5 in 5 minutes", "Http5xx", "GreaterThan", 5),
    AlertSpec(
        names.ALERT_RESPONSE_TIME, "response time > 5 s", "HttpResponseTime", "GreaterThan", 5
    ),
    AlertSpec(
        names.ALERT_AVAILABILITY,
        "availability < 99%",
        "availabilityResults/availabilityPercentage",
        "LessThan",
        99,
    ),
    AlertSpec(names.ALERT_CPU, "CPU > 80% for 10 minutes", "CpuPercentage", "GreaterThan", 80),
    AlertSpec(
        names.ALERT_MEMORY, "memory > 80% for 10 minutes", "MemoryPercentage", "GreaterThan", 80
    ),
    AlertSpec(names.ALERT_DISK, "disk space > 85%", "FileSystemUsage", "GreaterThan", None),
)
_OPERATORS = {
    "GreaterThan": ">",
    "GreaterThanOrEqual": ">=",
    "LessThan": "<",
    "LessThanOrEqual": "<=",
    "Equals": "=",
}


@dataclass
class VerifyOptions:
    resource_group: str
    app: str | None = None
    expected_sku: str = "B1"
    container: str = "game-images"
    budget: float = 50.0


@dataclass
class _Found:
    """What the az calls returned, shared by the checks."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    site: dict[str, Any] | None = None
    site_error: str | None = None  # why the app could not be read
    settings: dict[str, str] = field(default_factory=dict)
    storage: dict[str, Any] | None = None
    shown: dict[str, dict[str, Any]] = field(default_factory=dict)  # `resource show`, by id


def one_line(exc: Exception) -> str:
    """An az failure as one line: the command, then az's ERROR line when there is one."""
    text = str(exc)
    head, _, rest = text.partition("\n")
    errors = [line for line in rest.splitlines() if line.strip().startswith("ERROR")]
    detail = errors[0].strip() if errors else " ".join(rest.split())
    return f"{head} {detail}".strip() if detail else head


def not_signed_in(exc: Exception) -> bool:
    return "az login" in str(exc)


def _lower(value: Any) -> str:
    return str(value or "").lower()


def _of_type(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if _lower(r.get("type")) == kind]


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    """data[key] when it is an object, else {} (az leaves out or nulls what is not set)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _props(resource: dict[str, Any]) -> dict[str, Any]:
    return _dict(resource, "properties")


def _account_name(settings: dict[str, str]) -> str | None:
    """The storage account the app's settings name (connection string or account URL)."""
    match = re.search(r"AccountName=([^;]+)", settings.get("AZURE_STORAGE_CONNECTION_STRING", ""))
    if match:
        return match.group(1).lower()
    match = re.match(r"https://([^.]+)\.", settings.get("AZURE_STORAGE_ACCOUNT_URL", ""))
    return match.group(1).lower() if match else None


class Verifier:
    """Runs the checks in checklist order into `report`; see `run`."""

    def __init__(self, az: AzCli, options: VerifyOptions, report: CheckReport) -> None:
        self.az = az
        self.options = options
        self.report = report
        self.found = _Found()
        self.location = "LOCATION"

    # --- plumbing -------------------------------------------------------------------------

    @property
    def infra_hint(self) -> str:
        return (
            f"run `paletai deploy infra --resource-group {self.options.resource_group} "
            f"--location {self.location}`"
        )

    def missing(self, what: str) -> CheckFailed:
        return CheckFailed(f"no {what} in {self.options.resource_group}; {self.infra_hint}")

    def check(self, name: str, fn: Callable[[], str]) -> bool:
        """One pass/fail line: `fn` gives the detail, CheckFailed or an az failure fail it."""
        started = time.perf_counter()
        try:
            detail, ok = fn(), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except DeployError as exc:
            if not_signed_in(exc):
                raise
            detail, ok = one_line(exc), False
        self.report.add(Check(name, ok, round(time.perf_counter() - started, 3), detail))
        return ok

    def az_list(self, *args: str) -> list[dict[str, Any]]:
        return _as_list(self.az.run(*args, "--resource-group", self.options.resource_group))

    # --- the run --------------------------------------------------------------------------

    def run(self) -> CheckReport:
        """Every check; DeployError when az cannot be used at all (not signed in, not there),
        VerifyUsageError when the group holds several apps and --app is not given."""
        started = time.perf_counter()
        group = self.options.resource_group
        exists = self.az.run("group", "exists", "--name", group)
        if exists is not True:
            self.report.add(
                Check(
                    names.INFRA_GROUP,
                    False,
                    0.0,
                    f"resource group {group} does not exist (in this subscription); "
                    f"{self.infra_hint}",
                ),
            )
            self.report.seconds = time.perf_counter() - started
            return self.report
        resources = _as_list(self.az.run("resource", "list", "--resource-group", group))
        self.found.resources = resources
        locations = [
            str(r["location"]) for r in resources if r.get("location") not in (None, "global")
        ]
        if locations:
            self.location = locations[0]
        self.report.add(
            Check(names.INFRA_GROUP, True, 0.0, f"{group} exists ({len(resources)} resources)")
        )
        app = self._pick_app()
        self._load_app(app)
        self.check(names.INFRA_PLAN, self._plan)
        self.check(names.INFRA_APP, lambda: self._app_running(app))
        self.check(names.INFRA_STORAGE, self._storage)
        self.check(names.INFRA_CONTAINER, self._container)
        self._show_insights()
        self.check(names.INFRA_INSIGHTS, self._insights)
        self.check(names.INFRA_INSIGHTS_SETTING, self._insights_setting)
        self.check(names.INFRA_HEALTH_CHECK, self._health_check)
        self.check(names.ALERT_ACTION_GROUP, self._action_group)
        alerts: list[dict[str, Any]] = []
        try:
            alerts = self.az_list("monitor", "metrics", "alert", "list")
        except DeployError as exc:
            if not_signed_in(exc):
                raise
            failure = one_line(exc)
            for spec in ALERTS:
                self.report.add(Check(spec.check, False, 0.0, failure))
        else:
            for spec in ALERTS:
                self.check(spec.check, functools.partial(self._alert, spec, alerts))
        self.check(names.ALERT_WEB_TEST, self._web_test)
        budgets: list[dict[str, Any]] = []
        self.check(names.COST_BUDGET, lambda: self._budget(budgets))
        if budgets:
            self.check(names.COST_BUDGET_NOTIFICATIONS, lambda: self._notifications(budgets[0]))
        else:
            self.report.add(
                Check(names.COST_BUDGET_NOTIFICATIONS, False, 0.0, "no budget to notify from")
            )
        self.check(names.SECURITY_HTTPS_ONLY, self._https_only)
        self.check(names.SECURITY_IDENTITY, self._identity)
        self.check(names.SECURITY_BLOB_ROLE, self._blob_role)
        self.check(names.SECURITY_CORS, self._cors)
        self.check(names.SECURITY_IP_RESTRICTIONS, self._ip_restrictions)
        self.report.seconds = time.perf_counter() - started
        return self.report

    # --- finding the app --------------------------------------------------------------------

    def _pick_app(self) -> str | None:
        sites = [
            s
            for s in _of_type(self.found.resources, SITES)
            if "functionapp" not in _lower(s.get("kind"))
        ]
        site_names = sorted(str(s.get("name")) for s in sites)
        wanted = self.options.app
        if wanted is not None:
            if wanted.lower() in (n.lower() for n in site_names):
                return next(n for n in site_names if n.lower() == wanted.lower())
            return None
        if len(site_names) > 1:
            raise VerifyUsageError(
                f"{self.options.resource_group} holds {len(site_names)} web apps "
                f"({', '.join(site_names)}); say which with --app NAME"
            )
        return site_names[0] if site_names else None

    def _load_app(self, app: str | None) -> None:
        if app is None:
            return
        self.report.extra["app"] = app
        try:
            site = self.az.run(
                "webapp", "show", "--name", app, "--resource-group", self.options.resource_group
            )
            self.found.site = site if isinstance(site, dict) else None
            values = self.az.run(
                "webapp",
                "config",
                "appsettings",
                "list",
                "--name",
                app,
                "--resource-group",
                self.options.resource_group,
            )
        except DeployError as exc:
            if not_signed_in(exc):
                raise
            self.found.site, self.found.site_error = None, one_line(exc)
            return
        self.found.settings = {
            str(s.get("name")): str(s.get("value") or "") for s in _as_list(values)
        }

    def _site(self) -> dict[str, Any]:
        if self.found.site_error is not None:
            raise CheckFailed(self.found.site_error)
        if self.found.site is None:
            raise self.missing(
                "web app" if self.options.app is None else f"web app {self.options.app}"
            )
        return self.found.site

    def _site_config(self) -> dict[str, Any]:
        config = self._site().get("siteConfig")
        return config if isinstance(config, dict) else {}

    # --- Phase 1 ----------------------------------------------------------------------------

    def _plan(self) -> str:
        plans = self.az_list("appservice", "plan", "list")
        if not plans:
            raise self.missing("App Service Plan")
        plan = plans[0]
        if self.found.site is not None:
            plan_id = _lower(
                self.found.site.get("appServicePlanId") or self.found.site.get("serverFarmId")
            )
            plan = next((p for p in plans if _lower(p.get("id")) == plan_id), plan)
        sku = _dict(plan, "sku")
        sku_name = str(sku.get("name") or "?")
        self.report.extra["plan_sku"] = sku_name
        linux = "linux" in _lower(plan.get("kind")) or plan.get("reserved") is True
        system = "Linux" if linux else "Windows"
        what = f"{plan.get('name')}: SKU {sku_name} ({sku.get('tier') or '?'}), {system}"
        if sku_name.lower() != self.options.expected_sku.lower():
            raise CheckFailed(
                f"{what}; expected {self.options.expected_sku} (pass --sku {sku_name} if intended)"
            )
        return what

    def _app_running(self, app: str | None) -> str:
        if app is None and self.options.app is not None:
            raise CheckFailed(
                f"web app {self.options.app} not found in {self.options.resource_group}; "
                f"check the name (`deployment-outputs.json` webAppName) or {self.infra_hint}"
            )
        site = self._site()
        state = str(site.get("state") or "unknown")
        where = f"https://{site.get('defaultHostName')}"
        if state != "Running":
            raise CheckFailed(
                f"{site.get('name')} is {state} ({where}); start it with `paletai deploy start "
                f"--name {site.get('name')} --resource-group {self.options.resource_group}`"
            )
        self.report.extra["default_host_name"] = str(site.get("defaultHostName") or "")
        return f"{site.get('name')}: Running, {where}"

    def _storage(self) -> str:
        accounts = self.az_list("storage", "account", "list")
        if not accounts:
            raise self.missing("storage account")
        named = _account_name(self.found.settings)
        account = next((a for a in accounts if _lower(a.get("name")) == named), accounts[0])
        self.found.storage = account
        sku = _dict(account, "sku")
        used = " (the app's)" if named and _lower(account.get("name")) == named else ""
        return f"{account.get('name')}{used}: {account.get('kind')}, {sku.get('name') or '?'}"

    def _container(self) -> str:
        account = self.found.storage
        if account is None:
            raise CheckFailed("no storage account to hold it")
        name = self.options.container
        try:
            container = self.az.run(
                "storage",
                "container-rm",
                "show",
                "--storage-account",
                str(account.get("name")),
                "--name",
                name,
                "--resource-group",
                self.options.resource_group,
            )
        except DeployError as exc:
            if "ContainerNotFound" in str(exc) or "does not exist" in str(exc):
                raise CheckFailed(
                    f"no container {name} in {account.get('name')}; {self.infra_hint}"
                ) from None
            raise
        info = container if isinstance(container, dict) else {}
        access = info.get("publicAccess") or _props(info).get("publicAccess") or "None"
        where = f"{account.get('name')}/{name}"
        if account.get("allowBlobPublicAccess") is False:
            raise CheckFailed(
                f"{where}: the account refuses public access (allowBlobPublicAccess false), so "
                f"cover images cannot load; {self.infra_hint}"
            )
        if str(access) not in ("Blob", "Container"):
            raise CheckFailed(
                f"{where} is private (public access {access}); covers need Blob: "
                f"`az storage container-rm update --storage-account {account.get('name')} "
                f"--name {name} --public-access blob`"
            )
        return f"{where}: public access {access}"

    def _show_insights(self) -> None:
        """One `az resource show --ids` for Application Insights and the web test."""
        ids = [
            str(r["id"])
            for r in _of_type(self.found.resources, COMPONENTS)[:1]
            + _of_type(self.found.resources, WEB_TESTS)
            if r.get("id")
        ]
        if not ids:
            return
        try:
            shown = self.az.run("resource", "show", "--ids", *ids)
        except DeployError as exc:
            if not_signed_in(exc):
                raise
            return  # the checks below say what is missing
        self.found.shown = {_lower(r.get("id")): r for r in _as_list(shown)}

    def _component(self) -> dict[str, Any]:
        components = _of_type(self.found.resources, COMPONENTS)
        if not components:
            raise self.missing("Application Insights")
        first = components[0]
        return self.found.shown.get(_lower(first.get("id")), first)

    def _insights(self) -> str:
        component = self._component()
        props = _props(component)
        how = "workspace-based" if props.get("WorkspaceResourceId") else "classic"
        return f"{component.get('name')} ({how})"

    def _insights_setting(self) -> str:
        component = self._component()
        app = self._site().get("name")
        value = self.found.settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
        if not value:
            raise CheckFailed(
                f"APPLICATIONINSIGHTS_CONNECTION_STRING is not set on {app}: no telemetry; set "
                f"it to {component.get('name')}'s connection string (`paletai settings apply`)"
            )
        expected = str(_props(component).get("ConnectionString") or "")
        key = re.search(r"InstrumentationKey=([^;]+)", value)
        expected_key = re.search(r"InstrumentationKey=([^;]+)", expected)
        if expected_key and (key is None or key.group(1) != expected_key.group(1)):
            raise CheckFailed(
                f"APPLICATIONINSIGHTS_CONNECTION_STRING on {app} is not "
                f"{component.get('name')}'s (another Application Insights resource)"
            )
        return f"set on {app}, {component.get('name')}'s"

    def _health_check(self) -> str:
        path = self._site_config().get("healthCheckPath")
        if path != HEALTH_CHECK_PATH:
            raise CheckFailed(
                f"health check path is {path or 'not set'}, expected {HEALTH_CHECK_PATH}: "
                f"`az webapp config set --name {self._site().get('name')} --resource-group "
                f"{self.options.resource_group} --generic-configurations "
                '\'{"healthCheckPath": "/health"}\'`'
            )
        return f"{HEALTH_CHECK_PATH} (App Service replaces an instance that stops answering)"

    # --- Monitoring & alerts ----------------------------------------------------------------

    def _action_group(self) -> str:
        groups = self.az_list("monitor", "action-group", "list")
        if not groups:
            raise self.missing("action group")
        for group in groups:
            receivers = sum(
                len(group.get(kind) or [])
                for kind in ("emailReceivers", "smsReceivers", "webhookReceivers")
            )
            if group.get("enabled", True) and receivers:
                return f"{group.get('name')}: {receivers} receiver(s), enabled"
        raise CheckFailed(
            f"action group {groups[0].get('name')} has no receiver: alerts reach nobody; "
            f"redeploy with `--set alertEmail=YOU@EXAMPLE.COM` ({self.infra_hint})"
        )

    def _alert(self, spec: AlertSpec, alerts: list[dict[str, Any]]) -> str:
        for alert in alerts:
            criteria = _dict(alert, "criteria")
            for criterion in _as_list(criteria.get("allOf")):
                if _lower(criterion.get("metricName")) == spec.metric.lower():
                    return self._describe_alert(spec, alert, criterion)
        raise self.missing(f"metric alert on {spec.metric} ({spec.what})")

    def _describe_alert(
        self, spec: AlertSpec, alert: dict[str, Any], criterion: dict[str, Any]
    ) -> str:
        operator = str(criterion.get("operator"))
        threshold = criterion.get("threshold")
        shown = threshold
        if _number(threshold) >= 1024**3:  # the disk alert's bytes
            shown = f"{_number(threshold) / 1024**3:.1f} GiB"
        window = alert.get("windowSize") or "?"
        # availabilityResults/availabilityPercentage -> availabilityPercentage
        metric = str(criterion.get("metricName")).rsplit("/", 1)[-1]
        what = (
            f"{alert.get('name')}: {metric} "
            f"{criterion.get('timeAggregation') or ''} {_OPERATORS.get(operator, operator)} "
            f"{shown} over {window}"
        )
        if not alert.get("enabled", True):
            raise CheckFailed(f"{what}, DISABLED")
        if not _as_list(alert.get("actions")):
            raise CheckFailed(f"{what}, no action group: it fires to nobody")
        if spec.threshold is not None and (
            operator != spec.operator or _number(threshold) != spec.threshold
        ):
            raise CheckFailed(f"{what}; the checklist asks {spec.what}")
        return f"{what}, enabled, notifies {len(_as_list(alert.get('actions')))} action group(s)"

    def _web_test(self) -> str:
        tests = _of_type(self.found.resources, WEB_TESTS)
        if not tests:
            raise self.missing("availability web test")
        test = self.found.shown.get(_lower(tests[0].get("id")), tests[0])
        props = _props(test)
        request = _dict(props, "Request")
        url = str(request.get("RequestUrl") or "?")
        where = f"{test.get('name')}: GET {url}"
        if props and not props.get("Enabled", True):
            raise CheckFailed(f"{where}, DISABLED")
        if props and not url.endswith(HEALTH_CHECK_PATH):
            raise CheckFailed(f"{where}; expected the app's {HEALTH_CHECK_PATH}")
        regions = len(props.get("Locations") or [])
        every = props.get("Frequency")
        return f"{where} from {regions} regions every {every} s"

    # --- Cost management --------------------------------------------------------------------

    def _budget(self, out: list[dict[str, Any]]) -> str:
        budgets = self.az_list("consumption", "budget", "list")
        if not budgets:
            raise self.missing("budget")
        wanted = self.options.budget
        budget = next((b for b in budgets if _number(b.get("amount")) == wanted), budgets[0])
        out.append(budget)
        amount, grain = _number(budget.get("amount")), budget.get("timeGrain") or "?"
        what = f"{budget.get('name')}: {amount:g} {grain}"
        if amount != wanted:
            raise CheckFailed(f"{what}; expected {wanted:g} (pass --budget {amount:g} if intended)")
        return what

    def _notifications(self, budget: dict[str, Any]) -> str:
        notes = _dict(budget, "notifications")
        at: list[float] = []
        for note in _as_list(list(notes.values())):
            contacts = (note.get("contactEmails") or []) + (note.get("contactGroups") or [])
            if note.get("enabled", True) and contacts:
                at.append(_number(note.get("threshold")))
        shown = ", ".join(f"{value:g}%" for value in sorted(at)) or "none that reaches anyone"
        missing = [f"{value}%" for value in (80, 100) if float(value) not in at]
        if missing:
            raise CheckFailed(
                f"notifications at {shown}; missing {', '.join(missing)} with a contact "
                f"({self.infra_hint} with --set alertEmail=...)"
            )
        return f"notifications at {shown} of the budget"

    # --- Security hardening -----------------------------------------------------------------

    def _https_only(self) -> str:
        site = self._site()
        if site.get("httpsOnly") is not True:
            raise CheckFailed(
                f"{site.get('name')} answers plain HTTP: `az webapp update --name "
                f"{site.get('name')} --resource-group {self.options.resource_group} "
                "--https-only true`"
            )
        tls = self._site_config().get("minTlsVersion")
        return "HTTP redirected to HTTPS" + (f", TLS {tls}+" if tls else "")

    def _principal(self) -> str:
        site = self._site()
        identity = _dict(site, "identity")
        principal = identity.get("principalId")
        if "systemassigned" not in _lower(identity.get("type")) or not principal:
            raise CheckFailed(
                f"{site.get('name')} has no system-assigned managed identity: `az webapp "
                f"identity assign --name {site.get('name')} --resource-group "
                f"{self.options.resource_group}`"
            )
        return str(principal)

    def _identity(self) -> str:
        return f"system-assigned, principal {self._principal()}"

    def _blob_role(self) -> str:
        principal = self._principal()
        account = self.found.storage
        if account is None or not account.get("id"):
            raise CheckFailed("no storage account to hold the role")
        assignments = _as_list(
            self.az.run(
                "role",
                "assignment",
                "list",
                "--scope",
                str(account["id"]),
                "--fill-principal-name",
                "false",
            )
        )
        for assignment in assignments:
            role_id = _lower(assignment.get("roleDefinitionId"))
            role_name = assignment.get("roleDefinitionName")
            if assignment.get("principalId") == principal and (
                role_id.endswith(BLOB_DATA_CONTRIBUTOR_ID) or role_name == BLOB_DATA_CONTRIBUTOR
            ):
                return f"the app's identity is {BLOB_DATA_CONTRIBUTOR} on {account.get('name')}"
        raise CheckFailed(
            f"the app's identity has no {BLOB_DATA_CONTRIBUTOR} role on {account.get('name')}; "
            f"{self.infra_hint}"
        )

    def _cors(self) -> str:
        site = self._site()
        cors = self._site_config().get("cors")
        platform = (cors or {}).get("allowedOrigins") if isinstance(cors, dict) else None
        origins = self.found.settings.get("CORS_ORIGINS")
        if platform:
            raise CheckFailed(
                f"App Service's own CORS is on ({', '.join(map(str, platform))}) as well as the "
                "app's: browsers get two answers; clear it with `az webapp cors remove --name "
                f"{site.get('name')} --resource-group {self.options.resource_group} "
                "--allowed-origins`"
            )
        if origins is None:
            return "CORS_ORIGINS not set: PaletAI's default, any origin (*)"
        shown = "any origin (*)" if origins.strip() == "*" else origins
        return f"CORS_ORIGINS={shown}, answered by the app (App Service's CORS off)"

    def _ip_restrictions(self) -> str:
        config = self._site_config()
        rules = [
            r
            for r in _as_list(config.get("ipSecurityRestrictions"))
            if _lower(r.get("ipAddress")) not in ("any", "")
        ]
        default = str(config.get("ipSecurityRestrictionsDefaultAction") or "Allow")
        allowed = [str(r.get("ipAddress")) for r in rules if _lower(r.get("action")) == "allow"]
        denied = [str(r.get("ipAddress")) for r in rules if _lower(r.get("action")) == "deny"]
        if default.lower() == "deny" and not allowed:
            raise CheckFailed("every address is denied and none allowed: nobody reaches the app")
        if not rules:
            return f"none: open to every address (default {default})"
        parts = []
        if allowed:
            parts.append(f"allowed {', '.join(allowed)}")
        if denied:
            parts.append(f"denied {', '.join(denied)}")
        return f"{'; '.join(parts)}; everything else {default}"


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
