"""`paletai deploy ...`: infrastructure, package, app, stop/start, through the `az` CLI.

Examples (the checklist's Phases 1, 2 and 7):

    export DB_PATH='mongodb+srv://...' JWT_SECRET_KEY="$(openssl rand -base64 48)"
    paletai deploy infra --resource-group rg-paletai-prod --location westus3 --outputs outputs.json
    paletai deploy package --out deploy.zip
    paletai deploy app --name paletai-abc123 --resource-group rg-paletai-prod --zip deploy.zip
    paletai deploy stop-old --name emailgeniebackend --resource-group huddleup
    paletai deploy verify --resource-group rg-paletai-prod --json results/deploy-verify.json
    paletai deploy domain add api.paletai.com --app paletai-abc123 -g rg-paletai-prod
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paletai.ops.azure import deploy as ops
from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.decommission_cli import register as register_decommission
from paletai.ops.azure.domain import DomainRefused, DomainRequest, add_domain, default_host_name
from paletai.ops.azure.verify import (
    Verifier,
    VerifyOptions,
    VerifyUsageError,
    not_signed_in,
    one_line,
)
from paletai.ops.checks.dns import DnsOptions, resolver_problem, run_dns
from paletai.ops.checks.phase4 import CheckReport, print_check
from paletai.ops.cli import JsonOut, console, fail, finish_checks, now_iso, write_json
from paletai.ops.results import DeployAppResult, DeployInfraResult

deploy_app = typer.Typer(
    rich_markup_mode="markdown",
    help="Deploy to Azure App Service with the az CLI: infrastructure (Bicep), the ZIP package, "
    "the app; verify what is deployed; add a custom domain; stop or start an app (Phase 7, "
    "rollback).",
    no_args_is_help=True,
)

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

AppName = Annotated[str, typer.Option("--name", "-n", help="App Service (web app) name.")]
ResourceGroup = Annotated[str, typer.Option("--resource-group", "-g", help="Resource group.")]
Subscription = Annotated[
    str | None,
    typer.Option("--subscription", help="Subscription id or name (default: az's current one)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Print the az command lines it would run (secrets as ***), one per line; run none.",
    ),
]


@deploy_app.callback()
def deploy() -> None:
    """Azure deployment commands (a group, also when it has a single command)."""


def _az(subscription: str | None, redact: tuple[str, ...] = (), *, dry_run: bool = False) -> AzCli:
    try:
        return AzCli.locate(subscription, redact, dry_run=dry_run)
    except DeployError as exc:
        fail(str(exc), 1)


def _az_failed(exc: DeployError) -> str:
    """An az failure as the one line an operator reads: signing in, or az's own error."""
    if not_signed_in(exc):
        return (
            "az is not signed in; run `az login --tenant TENANT_ID`, then "
            "`az account set --subscription SUBSCRIPTION_ID` (or pass --subscription)"
        )
    return one_line(exc)


@deploy_app.command("infra")
def infra(
    resource_group: ResourceGroup,
    location: Annotated[str, typer.Option("--location", "-l", help="Azure region, e.g. westus3.")],
    subscription: Subscription = None,
    template: Annotated[Path, typer.Option("--template", help="Bicep template.")] = Path(
        "deploy/main.bicep"
    ),
    parameters: Annotated[
        Path | None,
        typer.Option("--parameters", help="Parameters file with the non-secret values."),
    ] = Path("deploy/parameters.json"),
    set_values: Annotated[
        list[str] | None,
        typer.Option("--set", help="NAME=VALUE for a non-secret parameter (repeatable)."),
    ] = None,
    deployment_name: Annotated[
        str | None, typer.Option("--deployment-name", help="Default: paletai-<UTC time>.")
    ] = None,
    outputs: Annotated[
        Path | None, typer.Option("--outputs", help="Write the deployment's outputs (JSON).")
    ] = None,
    what_if: Annotated[
        bool,
        typer.Option(
            "--what-if",
            help="Ask Azure what the deployment would change (ARM what-if); change nothing.",
        ),
    ] = False,
    dry_run: DryRun = False,
    json_out: JsonOut = None,
) -> None:
    """Phase 1: create the resource group and deploy main.bicep into it.

    Secrets come from the environment, with the app's setting names: DB_PATH and JWT_SECRET_KEY
    (required), OPENAI_API_KEY, AZURE_OPENAI_API_KEY, ANTHROPIC_API_KEY, ONESIGNAL_REST_API_KEY.
    They reach az through a temporary 0600 parameters file, never its command line.
    """
    try:
        secrets = ops.secrets_from_environment(os.environ)
        overrides = ops.parse_overrides(set_values or [])
    except DeployError as exc:
        fail(str(exc), 1)
    name = deployment_name or "paletai-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    request = ops.InfraRequest(
        resource_group=resource_group,
        location=location,
        template=template,
        parameters_file=parameters,
        overrides=overrides,
        deployment_name=name,
    )
    az = _az(subscription, tuple(secrets.values()), dry_run=dry_run)
    started, clock = now_iso(), time.perf_counter()

    def record(ok: bool, **values: object) -> None:
        """The --json result (not for --dry-run, which deploys nothing)."""
        if dry_run:
            return
        result = DeployInfraResult.model_validate(
            {
                "resource_group": resource_group,
                "location": location,
                "deployment_name": name,
                "template": str(template),
                "parameters_file": None if parameters is None else str(parameters),
                "overrides": sorted(overrides),
                "started_at": started,
                "seconds": round(time.perf_counter() - clock, 3),
                "ok": ok,
                "what_if": what_if,
                **values,
            }
        )
        write_json(json_out, result)

    if what_if:
        try:
            changes = ops.what_if_infra(az, request, secrets)
        except DeployError as exc:
            record(False, error=_az_failed(exc))
            fail(_az_failed(exc), 1)
        if dry_run:
            return
        record(True, changes=[f"{change.kind} {change.resource}" for change in changes])
        table = Table("change", "resource", title=f"what-if of {name} in {resource_group}")
        for change in changes:
            table.add_row(change.kind, escape(change.resource))
        out.print(table)
        err.print(f"{len(changes)} resources would change; nothing was deployed")
        return
    if not dry_run:
        err.print(f"deploying {escape(str(template))} to {escape(resource_group)} ({location}) ...")
    try:
        result = ops.deploy_infra(az, request, secrets)
    except DeployError as exc:
        record(False, error=_az_failed(exc))
        fail(_az_failed(exc), 1)
    if dry_run:
        return
    table = Table("output", "value", title=f"deployment {name}")
    for key, value in result.items():
        table.add_row(key, escape(str(value)))
    out.print(table)
    if outputs is not None:
        outputs.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        err.print(f"outputs written to {escape(str(outputs))}")
    record(True, outputs=result, outputs_file=None if outputs is None else str(outputs))


@deploy_app.command("package")
def package(
    out_path: Annotated[Path, typer.Option("--out", help="ZIP file to write.")] = Path(
        "deploy.zip"
    ),
    root: Annotated[
        Path | None, typer.Option("--root", help="Project root (default: found from here).")
    ] = None,
) -> None:
    """Phase 2: build the ZIP that App Service deploys.

    src/, pyproject.toml, README.md, a requirements.txt generated from pyproject's dependencies
    (App Service's Oryx build installs it) and deploy/startup.sh; no .git, caches, virtualenvs,
    tests, node tools or local data. The same tree always gives the same bytes.
    """
    try:
        project = root if root is not None else ops.find_project_root(Path.cwd())
        report = ops.build_package(project, out_path)
    except DeployError as exc:
        fail(str(exc), 1)
    out.print(f"{escape(str(report.path))}: {len(report.files)} files, {report.size:,} bytes")


@deploy_app.command("app")
def app(
    name: AppName,
    resource_group: ResourceGroup,
    zip_path: Annotated[Path, typer.Option("--zip", help="Package from `deploy package`.")] = Path(
        "deploy.zip"
    ),
    subscription: Subscription = None,
    dry_run: DryRun = False,
    json_out: JsonOut = None,
) -> None:
    """Phase 2 (ZIP deploy): set the startup command and deploy the package with config-zip."""
    az = _az(subscription, dry_run=dry_run)
    started, clock = now_iso(), time.perf_counter()
    if not dry_run:
        err.print(f"deploying {escape(str(zip_path))} to {escape(name)} ...")
    error: str | None = None
    try:
        ops.deploy_app(az, name, resource_group, zip_path)
    except DeployError as exc:
        error = _az_failed(exc)
    if not dry_run:
        size, digest = ops.file_digest(zip_path)
        result = DeployAppResult(
            app=name,
            resource_group=resource_group,
            package=str(zip_path),
            package_bytes=size,
            package_sha256=digest,
            started_at=started,
            seconds=round(time.perf_counter() - clock, 3),
            ok=error is None,
            error=error,
        )
        write_json(json_out, result)
    if error is not None:
        fail(error, 1)
    if dry_run:
        return
    out.print(f"deployed {escape(str(zip_path))} to {escape(name)}")


def _change_state(
    action: Literal["stop", "start"],
    name: str,
    resource_group: str,
    subscription: str | None,
    yes: bool,
    dry_run: bool,
) -> None:
    if not (yes or dry_run) and not typer.confirm(f"{action} web app {name} in {resource_group}?"):
        err.print("nothing done")
        raise typer.Exit(1)
    az = _az(subscription, dry_run=dry_run)
    try:
        state = ops.set_app_state(az, name, resource_group, action)
    except DeployError as exc:
        fail(str(exc), 1)
    if dry_run:
        return
    out.print(f"{escape(name)}: {escape(state)}")


@deploy_app.command("stop-old")
def stop_old(
    name: AppName,
    resource_group: ResourceGroup,
    subscription: Subscription = None,
    yes: Yes = False,
    dry_run: DryRun = False,
) -> None:
    """Phase 7: stop the old app service (after 24-48 hours on the new one)."""
    _change_state("stop", name, resource_group, subscription, yes, dry_run)


@deploy_app.command("start")
def start(
    name: AppName,
    resource_group: ResourceGroup,
    subscription: Subscription = None,
    yes: Yes = False,
    dry_run: DryRun = False,
) -> None:
    """Rollback: start an app service again (the old one, after `stop-old`)."""
    _change_state("start", name, resource_group, subscription, yes, dry_run)


@deploy_app.command("verify")
def verify(
    resource_group: ResourceGroup,
    app_name: Annotated[
        str | None,
        typer.Option("--app", help="The web app (default: the only web app in the group)."),
    ] = None,
    subscription: Subscription = None,
    sku: Annotated[
        str, typer.Option("--sku", help="The App Service Plan SKU expected (the checklist: B1).")
    ] = "B1",
    container: Annotated[
        str, typer.Option("--container", help="Blob container of the cover images.")
    ] = "game-images",
    budget: Annotated[
        float,
        typer.Option("--budget", min=1, help="Monthly budget expected (the checklist: 50)."),
    ] = 50.0,
    json_out: JsonOut = None,
) -> None:
    """Phase 1 "Verify Infrastructure", and the post-migration resources, one line each.

    Reads back (az, read-only) what `deploy infra` creates: the resource group; the plan and its
    SKU; the web app Running, HTTPS only, health check path /health; the storage account and
    its container with public blob read; Application Insights and its connection string on the
    app; the action group, the metric alerts (5xx, response time, availability, CPU, memory,
    disk) and the availability test; the budget and its 80 %/100 % notifications; the managed
    identity and its Storage Blob Data Contributor role; CORS and IP restrictions. A missing
    resource fails its line and says what to run. Exit 1 unless every line passes. Example:

        paletai deploy verify -g rg-paletai-prod --json results/deploy-verify.json
    """
    az = _az(subscription)
    report = CheckReport("deploy verify", resource_group, echo=lambda c: print_check(console, c))
    report.extra["expected_sku"] = sku
    options = VerifyOptions(resource_group, app_name, sku, container, budget)
    console.print(f"Phase 1: what is deployed in [bold]{escape(resource_group)}[/bold]?")
    try:
        Verifier(az, options, report).run()
    except VerifyUsageError as exc:
        fail(str(exc), 2)
    except DeployError as exc:
        fail(_az_failed(exc), 1)
    finish_checks(report, json_out)


domain_app = typer.Typer(
    rich_markup_mode="markdown",
    help="A custom domain on the new app (Phase 5): host name, managed certificate, binding.",
    no_args_is_help=True,
)
deploy_app.add_typer(domain_app, name="domain")


@domain_app.callback()
def domain() -> None:
    """Custom domains of a web app."""


@domain_app.command("add")
def domain_add(
    host: Annotated[str, typer.Argument(help="The custom domain, e.g. api.paletai.com.")],
    app_name: Annotated[str, typer.Option("--app", help="The new web app.")],
    resource_group: ResourceGroup,
    subscription: Subscription = None,
    resolver: Annotated[
        str | None,
        typer.Option(help="Nameserver for the CNAME query: IP or IP:PORT (default: the system's)."),
    ] = None,
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", hidden=True, help="GET http:// (tests).")
    ] = False,
    port: Annotated[int | None, typer.Option(hidden=True, help="Port of the GET (tests).")] = None,
    dry_run: DryRun = False,
    json_out: JsonOut = None,
) -> None:
    """Phase 5: add HOST to the app, with a free managed certificate, then check DNS and HTTPS.

    Runs `az webapp config hostname add`, `az webapp config ssl create --hostname HOST` and
    `az webapp config ssl bind --ssl-type SNI`, then the checks of `paletai migrate dns HOST
    --expect APP'S HOST NAME` (CNAME, then GET https://HOST/health with the certificate
    checked). Azure accepts HOST only once its CNAME points at the app: without it, this says
    which record to create. Example:

        paletai deploy domain add api.paletai.com --app paletai-abc123 -g rg-paletai-prod
    """
    request = DomainRequest(host.strip().rstrip(".").lower(), app_name, resource_group)
    if not request.host or "." not in request.host or "/" in request.host:
        fail(f"{host!r} is not a host name; give one like api.paletai.com", 2)
    problem = resolver_problem(resolver)
    if problem:
        fail(problem, 2)
    az = _az(subscription, dry_run=dry_run)
    report = CheckReport("deploy domain add", request.host)
    report.echo = lambda c: print_check(console, c)
    report.extra.update(app=app_name, resource_group=resource_group, dry_run=dry_run)
    started = time.perf_counter()
    try:
        target = default_host_name(az, request)
        report.extra["default_host_name"] = target
        done, thumbprint = add_domain(az, request, report, target)
    except DomainRefused as exc:
        fail(str(exc), 1)
    except DeployError as exc:
        fail(_az_failed(exc), 1)
    if dry_run:
        return
    if thumbprint:
        report.extra["thumbprint"] = thumbprint
    if done:
        options = DnsOptions(
            host=request.host,
            expect=target,
            resolver=resolver,
            insecure_http=insecure_http,
            port=port,
        )
        asyncio.run(run_dns(options, report))
    report.seconds = time.perf_counter() - started
    finish_checks(report, json_out)


# Phase 7: `deploy decommission` (ops/azure/decommission.py).
register_decommission(deploy_app)
