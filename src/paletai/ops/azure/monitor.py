"""What the running app says about itself, read through the az CLI: Application Insights
(`migrate insights`, and the traffic figures of `migrate inventory`) and its log stream
(`migrate logs`).

Application Insights is queried with Kusto through `az rest` against the Application Insights
data API (POST https://api.applicationinsights.io/v1/apps/{appId}/query), not with
`az monitor app-insights query`: that command lives in the `application-insights` extension,
which az downloads from Azure on first use; the core az parses `az rest` everywhere (our
parser test runs it), and the query and its answer are the same.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.settings import AppSetting, SettingsFileError, parse_settings
from paletai.ops.checks import names
from paletai.ops.checks.phase4 import Check, CheckReport
from paletai.ops.errors import OpsError
from paletai.ops.report.checklist import mask_secrets
from paletai.ops.results import InsightsComponent, InsightsFigures

INSIGHTS_API = "https://api.applicationinsights.io"
RESPONSE_LIMIT_SECONDS = 2.0
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
LEGACY_KEY = "APPINSIGHTS_INSTRUMENTATIONKEY"
SAMPLE_LINES = 5


class InsightsError(OpsError):
    """Application Insights answered something that is not a query result."""


# ---------------------------------------------------------------------------------------------
# az failures as one line


def az_failure(exc: DeployError) -> str:
    """One line out of an az failure: what failed, az's own message, and what to do."""
    text = str(exc)
    head, _, said = text.partition("\n")
    if not said:
        return text
    what = head.split(" failed", 1)[0]
    if "az login" in said:
        return (
            f"{what}: not logged in to Azure; run `az login` "
            "(then `az account set --subscription SUBSCRIPTION_ID`) and try again"
        )
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    message = next((line for line in lines if line.startswith("ERROR:")), lines[0])
    message = re.sub(r"^ERROR:\s*(\(\w+\)\s*)?", "", message)
    message = re.sub(r"\s*For more details please go to \S+", "", message).rstrip(". ")
    if re.search(r"ResourceNotFound|ResourceGroupNotFound|not found|could not be found", said):
        return (
            f"{what}: {message}; check --app and --resource-group, and that az is on the "
            "subscription that has them (`az account show`)"
        )
    return f"{what}: {message}"


# ---------------------------------------------------------------------------------------------
# The app's settings and its Application Insights component


def read_app_settings(az: AzCli, app: str, resource_group: str) -> list[AppSetting]:
    """The app's settings (`az webapp config appsettings list`); from here on az masks every
    secret value in what it shows."""
    answer = az.run(
        "webapp", "config", "appsettings", "list", "--name", app, "--resource-group", resource_group
    )
    try:
        settings = parse_settings(json.dumps(answer if answer is not None else []), app)
    except SettingsFileError as exc:
        raise InsightsError(f"az webapp config appsettings list: {exc}") from None
    az.redact = tuple(az.redact) + tuple(s.value for s in settings if s.secret and s.value)
    return settings


def connection_fields(value: str) -> dict[str, str]:
    """`Key=value;Key2=value2` (a connection string) as a dict, keys lower-cased."""
    fields: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.partition("=")
        if sep and key.strip():
            fields[key.strip().lower()] = val.strip()
    return fields


@dataclass
class Found:
    """The component, or why there is none (a sentence that says what to do)."""

    component: InsightsComponent | None
    detail: str


def find_insights(az: AzCli, settings: Sequence[AppSetting], resource_group: str) -> Found:
    """The app's Application Insights component: the one in RESOURCE_GROUP whose
    instrumentation key is in the app's connection string (or the only one there when the app
    has none); else the ApplicationId the connection string names."""
    values = {s.name: s.value for s in settings}
    fields = connection_fields(values.get(CONNECTION_STRING, ""))
    key = fields.get("instrumentationkey") or values.get(LEGACY_KEY, "").strip()
    listed = az.run(
        "resource",
        "list",
        "--resource-group",
        resource_group,
        "--resource-type",
        "Microsoft.Insights/components",
    )
    candidates = [c for c in listed or [] if isinstance(c, dict) and c.get("id")]
    for candidate in candidates:
        shown = az.run("resource", "show", "--ids", str(candidate["id"]))
        props = shown.get("properties") if isinstance(shown, dict) else None
        if not isinstance(props, dict) or not props.get("AppId"):
            continue
        mine = props.get("InstrumentationKey") == key if key else len(candidates) == 1
        if mine:
            component = InsightsComponent(
                name=str(candidate.get("name") or shown.get("name")),
                id=str(candidate["id"]),
                app_id=str(props["AppId"]),
            )
            how = "its connection string's key" if key else "the only one in the group"
            return Found(component, f"{component.name} (app id {component.app_id}; {how})")
    if fields.get("applicationid"):
        component = InsightsComponent(name="(outside the group)", app_id=fields["applicationid"])
        return Found(component, f"app id {component.app_id} from the app's connection string")
    if key:
        return Found(
            None,
            f"the app sends telemetry to a component that is not in {resource_group} "
            "(its instrumentation key matches none there); give the component's group with "
            "--insights-group",
        )
    many = f"{len(candidates)} components there" if candidates else "none there"
    return Found(
        None,
        f"the app has no {CONNECTION_STRING} and {resource_group} has {many}: "
        "Application Insights is not set up for it (create one and set the connection string)",
    )


def query_insights(
    az: AzCli, component: InsightsComponent, query: str, timespan: str
) -> list[dict[str, Any]]:
    """The rows of a Kusto query, as dicts by column name."""
    body = json.dumps({"query": query, "timespan": timespan})
    answer = az.run(
        "rest",
        "--method",
        "post",
        "--url",
        f"{INSIGHTS_API}/v1/apps/{component.app_id}/query",
        "--resource",
        INSIGHTS_API,
        "--headers",
        "Content-Type=application/json",
        "--body",
        body,
    )
    if answer is None and az.dry_run:
        return []
    try:
        table = answer["tables"][0]
        columns = [column["name"] for column in table["columns"]]
        return [dict(zip(columns, row, strict=True)) for row in table["rows"]]
    except (KeyError, IndexError, TypeError, ValueError):
        raise InsightsError(
            f"Application Insights answered something that is not a query result: "
            f"{mask_secrets(str(answer))[:160]}"
        ) from None


def window_query(minutes: int) -> str:
    """One row over the window: requests, failed requests, 5xx, exceptions, average and p95
    duration (ms), and the most frequent exceptions and 5xx requests (one query, one call)."""
    return (
        f"let window = {minutes}m;\n"
        "let exceptionCount = toscalar(exceptions | where timestamp > ago(window) | count);\n"
        "let problems = toscalar(\n"
        "  union\n"
        "    (exceptions | where timestamp > ago(window)\n"
        '     | summarize n = count() by what = strcat("exception ", type, ": ", outerMessage)),\n'
        "    (requests | where timestamp > ago(window) and toint(resultCode) >= 500\n"
        '     | summarize n = count() by what = strcat("HTTP ", resultCode, " ", name))\n'
        f"  | top {SAMPLE_LINES} by n desc\n"
        '  | summarize make_list(strcat(n, " x ", what)));\n'
        "requests\n"
        "| where timestamp > ago(window)\n"
        "| summarize requests = count(), failed = countif(success == false),\n"
        "    server_errors = countif(toint(resultCode) >= 500),\n"
        "    avg_ms = avg(duration), p95_ms = percentile(duration, 95)\n"
        "| extend exceptions = exceptionCount, top_problems = problems"
    )


def daily_query(days: int) -> str:
    """Requests and failed requests per UTC day over the last `days` days."""
    return (
        "requests\n"
        f"| where timestamp > ago({days}d)\n"
        "| summarize requests = count(), failed = countif(success == false)"
        " by day = startofday(timestamp)\n"
        "| order by day asc"
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _float(value: Any) -> float | None:
    return round(float(value), 1) if isinstance(value, int | float) else None


def _lines(value: Any) -> list[str]:
    """A dynamic column (the API sends it as JSON text) as masked lines."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    items = value if isinstance(value, list) else []
    return [mask_secrets(str(item))[:300] for item in items[:SAMPLE_LINES]]


def figures_of(row: dict[str, Any]) -> InsightsFigures:
    requests, failed = _int(row.get("requests")), _int(row.get("failed"))
    return InsightsFigures(
        requests=requests,
        failed=failed,
        failure_rate=round(failed / requests, 4) if requests else 0.0,
        server_errors=_int(row.get("server_errors")),
        exceptions=_int(row.get("exceptions")),
        avg_ms=_float(row.get("avg_ms")),
        p95_ms=_float(row.get("p95_ms")),
        top_problems=_lines(row.get("top_problems")),
    )


def run_insights(
    az: AzCli,
    app: str,
    resource_group: str,
    minutes: int,
    report: CheckReport,
    *,
    insights_group: str | None = None,
) -> None:
    """The checklist's Phase 6 "Application Insights" items as checks over the last minutes."""
    started = time.perf_counter()
    settings = read_app_settings(az, app, resource_group)
    found = find_insights(az, settings, insights_group or resource_group)
    report.add(
        Check(
            names.INSIGHTS_COMPONENT,
            found.component is not None,
            time.perf_counter() - started,
            found.detail,
        )
    )
    if found.component is None:
        return
    report.extra["insights"] = found.component
    started = time.perf_counter()
    try:
        rows = query_insights(az, found.component, window_query(minutes), f"PT{minutes}M")
        figures = figures_of(rows[0] if rows else {})
    except (DeployError, InsightsError) as exc:
        detail = az_failure(exc) if isinstance(exc, DeployError) else str(exc)
        report.add(Check("insights: query", False, time.perf_counter() - started, detail))
        return
    took = time.perf_counter() - started
    report.extra["figures"] = figures
    window = f"in the last {minutes} min"
    report.add(
        Check(
            names.INSIGHTS_REQUESTS,
            figures.requests > 0,
            took,
            f"{figures.requests:,} requests {window}"
            if figures.requests
            else f"no request {window}: is the app receiving traffic (and sending telemetry)?",
        )
    )
    clean = not figures.exceptions and not figures.server_errors
    detail = (
        f"{figures.server_errors} responses 5xx, {figures.exceptions} exceptions, "
        f"failure rate {figures.failure_rate:.1%} ({figures.failed} failed requests) {window}"
    )
    if figures.top_problems:
        detail += f"; most frequent: {figures.top_problems[0]}"
    report.add(Check(names.INSIGHTS_NO_ERRORS, clean, 0.0, detail))
    limit_ms = RESPONSE_LIMIT_SECONDS * 1000
    p95 = figures.p95_ms
    report.add(
        Check(
            f"{names.INSIGHTS_RESPONSE_TIME}{RESPONSE_LIMIT_SECONDS:g} s",
            p95 is not None and p95 < limit_ms,
            0.0,
            f"p95 {p95:,.0f} ms, average {figures.avg_ms or 0:,.0f} ms over "
            f"{figures.requests:,} requests"
            if p95 is not None
            else f"no request {window} to time",
        )
    )


# ---------------------------------------------------------------------------------------------
# Log stream


_ERROR = re.compile(r"\b(?:ERROR|CRITICAL|FATAL)\b")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
_DATABASE = re.compile(
    r"ServerSelectionTimeoutError|database_unavailable|AutoReconnect|NetworkTimeout|"
    r"connection refused|ConnectionRefusedError",
    re.I,
)
# The log-streaming service's own lines: not the app's activity.
_SERVICE = re.compile(
    r"now connected to log-streaming service|No new trace in the past|^\s*$", re.I
)


@dataclass
class LogScan:
    lines: int = 0
    activity: int = 0
    errors: int = 0
    tracebacks: int = 0
    database: int = 0
    samples: list[str] = field(default_factory=list)


def scan_log(lines: Sequence[str]) -> LogScan:
    """Count the app's lines, ERROR/CRITICAL lines, Python tracebacks and database connection
    failures; keep the first few offending lines, secrets masked."""
    scan = LogScan(lines=sum(1 for line in lines if line.strip()))
    for line in lines:
        if _SERVICE.search(line):
            continue
        scan.activity += 1
        bad = False
        if _TRACEBACK.search(line):
            scan.tracebacks += 1
            bad = True
        elif _ERROR.search(line):
            scan.errors += 1
            bad = True
        if _DATABASE.search(line):
            scan.database += 1
            bad = True
        if bad and len(scan.samples) < SAMPLE_LINES:
            scan.samples.append(mask_secrets(line.strip())[:300])
    return scan


def run_logs(
    az: AzCli, app: str, resource_group: str, seconds: float, report: CheckReport
) -> LogScan:
    """The checklist's Phase 6 "Log Streaming": `az webapp log tail` for `seconds`, scanned."""
    started = time.perf_counter()
    lines = az.stream(
        "webapp", "log", "tail", "--name", app, "--resource-group", resource_group, seconds=seconds
    )
    took = time.perf_counter() - started
    scan = scan_log(lines or [])
    report.extra.update(
        seconds_listened=round(took, 1),
        lines=scan.lines,
        activity_lines=scan.activity,
        error_lines=scan.errors,
        tracebacks=scan.tracebacks,
        database_failures=scan.database,
        samples=scan.samples,
    )
    first = f"; first: {scan.samples[0]}" if scan.samples else ""
    report.add(
        Check(
            names.LOGS_ACTIVITY,
            scan.activity > 0,
            took,
            f"{scan.activity:,} lines from the app in {took:.0f} s"
            if scan.activity
            else f"no line from the app in {took:.0f} s: is application logging on? "
            f"(`az webapp log config --name {app} --resource-group {resource_group} "
            "--docker-container-logging filesystem`)",
        )
    )
    report.add(
        Check(
            names.LOGS_NO_ERRORS,
            not scan.errors and not scan.tracebacks,
            0.0,
            f"{scan.errors} ERROR lines, {scan.tracebacks} tracebacks{first}",
        )
    )
    db_first = next((s for s in scan.samples if _DATABASE.search(s)), "")
    report.add(
        Check(
            names.LOGS_DATABASE,
            not scan.database,
            0.0,
            f"{scan.database} database connection failures; first: {db_first}"
            if scan.database
            else f"no database connection failure in {scan.lines:,} lines",
        )
    )
    return scan
