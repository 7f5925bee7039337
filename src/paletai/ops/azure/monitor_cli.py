"""`paletai migrate inventory | insights | logs`, added to the migrate sub-app by
`register(migrate_app)`: the old app documented, and the new one watched, through the az CLI."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.inventory import run_inventory
from paletai.ops.azure.monitor import RESPONSE_LIMIT_SECONDS, az_failure, run_insights, run_logs
from paletai.ops.checks.phase4 import CheckReport, print_check
from paletai.ops.cli import JsonOut, console, fail, finish_checks
from paletai.ops.errors import OpsError

App = Annotated[str, typer.Option("--app", "-n", help="The App Service (web app) name.")]
ResourceGroup = Annotated[str, typer.Option("--resource-group", "-g", help="Its resource group.")]
Subscription = Annotated[
    str | None,
    typer.Option("--subscription", help="Subscription id or name (default: az's current one)."),
]
InsightsGroup = Annotated[
    str | None,
    typer.Option(
        "--insights-group",
        help="Resource group of the Application Insights component, when not the app's.",
    ),
]


def _measure(report: CheckReport, body: Callable[[AzCli], None], subscription: str | None) -> None:
    """Run `body` with az; an az failure before any verdict (not logged in, no such app) ends
    the command with one line and exit 2."""
    started = time.perf_counter()
    try:
        body(AzCli.locate(subscription, echo=console.print))
    except DeployError as exc:
        fail(az_failure(exc))
    except OpsError as exc:
        fail(str(exc))
    report.seconds = time.perf_counter() - started


def _report(command: str, app: str, resource_group: str) -> CheckReport:
    report = CheckReport(command, f"{app} ({resource_group})")
    report.echo = lambda check: print_check(console, check)
    report.extra.update(app=app, resource_group=resource_group)
    return report


def inventory_command(
    app: App,
    resource_group: ResourceGroup,
    days: Annotated[
        int, typer.Option(min=1, max=90, help="Days of Application Insights traffic to sum.")
    ] = 7,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Also write the app settings here (values in clear, mode 0600)."
        ),
    ] = None,
    insights_group: InsightsGroup = None,
    subscription: Subscription = None,
    json_out: JsonOut = None,
) -> None:
    """Pre-Migration "Old Environment Documentation": what the old app is, read through az.

    One line per checklist item: the app settings (`az webapp config appsettings list`; secrets
    masked on screen and in --json, --out keeps them for `settings apply`); custom domains and
    their TLS bindings (`az webapp config hostname list`, `az webapp config ssl list`); the
    plan's SKU and tier (`az webapp show`, `az appservice plan show`); requests per day and the
    failure rate over --days from Application Insights (found by the app's
    APPLICATIONINSIGHTS_CONNECTION_STRING); and the third-party services the settings name
    (MongoDB hosts, AI provider, OneSignal, storage account: never a credential). Exit 1 when
    an item could not be documented (no Application Insights, no plan), 2 when az cannot run
    (`az login` first) or the app is not found. Example:

        paletai migrate inventory --app emailgeniebackend -g huddleup --out old-app-settings.json \\
          --json inventory.json
    """
    report = _report("migrate inventory", app, resource_group)
    report.extra["days"] = days
    console.print(f"Old environment: [bold]{escape(app)}[/bold] in {escape(resource_group)}")

    def body(az: AzCli) -> None:
        run_inventory(az, app, resource_group, days, report, out=out, insights_group=insights_group)

    _measure(report, body, subscription)
    finish_checks(report, json_out)


def insights_command(
    app: App,
    resource_group: ResourceGroup,
    minutes: Annotated[
        int, typer.Option(min=1, max=1440, help="Look at the last N minutes of telemetry.")
    ] = 30,
    insights_group: InsightsGroup = None,
    subscription: Subscription = None,
    json_out: JsonOut = None,
) -> None:
    """Phase 6 "Application Insights": requests, errors and response times of the last minutes.

    Finds the app's Application Insights component (by its APPLICATIONINSIGHTS_CONNECTION_STRING,
    in the app's resource group or --insights-group) and runs one Kusto query over the last
    --minutes: requests, failed requests, 5xx responses, exceptions, average and p95 duration.
    Checks: requests are arriving (what Live Metrics shows); no 5xx and no exception (the most
    frequent ones are listed); p95 response time under 2 s. The query goes through `az rest`
    to the Application Insights API (the `az monitor app-insights` extension is not needed).
    Exit 1 when a check fails or the app has no Application Insights, 2 when az cannot run
    (`az login` first) or the app is not found. Example:

        paletai migrate insights --app NEW_APP -g rg-paletai-prod --minutes 30 --json insights.json
    """
    report = _report("migrate insights", app, resource_group)
    report.extra["minutes"] = minutes
    console.print(
        f"Application Insights of [bold]{escape(app)}[/bold], last {minutes} min "
        f"(pass: no 5xx, no exception, p95 < {RESPONSE_LIMIT_SECONDS:g} s)"
    )

    def body(az: AzCli) -> None:
        run_insights(az, app, resource_group, minutes, report, insights_group=insights_group)

    _measure(report, body, subscription)
    finish_checks(report, json_out)


def logs_command(
    app: App,
    resource_group: ResourceGroup,
    seconds: Annotated[
        float, typer.Option(min=1, max=3600, help="Listen to the log stream this long.")
    ] = 60.0,
    subscription: Subscription = None,
    json_out: JsonOut = None,
) -> None:
    """Phase 6 "Log Streaming": `az webapp log tail` for --seconds, then scanned.

    Counts the app's lines, ERROR/CRITICAL lines, Python tracebacks and database connection
    failures (pymongo's ServerSelectionTimeoutError and AutoReconnect, `database_unavailable`,
    connection refused), and shows the first few offending lines with secrets masked. Checks:
    the app logs something (normal activity); no error message; no database connection
    failure. Application logging must be on (`az webapp log config --name APP -g RG
    --docker-container-logging filesystem`). Exit 1 when a check fails, 2 when az cannot run
    (`az login` first) or the app is not found. Example:

        paletai migrate logs --app NEW_APP -g rg-paletai-prod --seconds 60 --json logs.json
    """
    report = _report("migrate logs", app, resource_group)
    report.extra["seconds_listened"] = 0.0
    console.print(f"Log stream of [bold]{escape(app)}[/bold] for {seconds:g} s")

    def body(az: AzCli) -> None:
        scan = run_logs(az, app, resource_group, seconds, report)
        for line in scan.samples:
            console.print(f"     {escape(line)}", soft_wrap=True)

    _measure(report, body, subscription)
    finish_checks(report, json_out)


def register(migrate_app: typer.Typer) -> None:
    """Add `inventory`, `insights` and `logs` to the `paletai migrate` sub-app."""
    migrate_app.command("inventory")(inventory_command)
    migrate_app.command("insights")(insights_command)
    migrate_app.command("logs")(logs_command)
