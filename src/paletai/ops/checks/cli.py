"""`paletai migrate ...`: the checklist's verification phases (4, 5, 6) as commands.

Each prints one PASS/FAIL line per check and a summary, exits 0 only when every check passed
(1 otherwise, 2 for a usage mistake) and writes `--json FILE` for the migration report.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from paletai.ops.checks.api import normalise_base_url
from paletai.ops.checks.dns import LOWERED_TTL_SECONDS, DnsOptions, resolver_problem, run_dns
from paletai.ops.checks.load import AVERAGE_LIMIT_SECONDS, LoadOptions, run_load
from paletai.ops.checks.phase4 import (
    DEFAULT_PROMPT,
    CheckOptions,
    CheckReport,
    print_check,
    run_phase4,
)
from paletai.ops.checks.preflight import PreflightOptions, redact, run_preflight
from paletai.ops.cli import JsonOut, console, fail, finish_checks

migrate_app = typer.Typer(
    help=(
        "The migration checklist as checks: Pre-Migration (preflight, inventory), Phase 4 "
        "(check), Phase 5 (dns), Phase 6 (load, insights, logs), then the report; rehearse runs "
        "it all on this machine. Each check exits 0 only when every line passed; --json FILE "
        "writes the result for the migration report."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _base_url(url: str) -> str:
    try:
        return normalise_base_url(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="URL") from None


@migrate_app.command()
def check(
    url: Annotated[str, typer.Argument(help="Base URL of the PaletAI to check.")],
    email: Annotated[
        str | None,
        typer.Option(help="Test account (default: a new migration-check+UUID@example.com)."),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Its password (needed with --email for an existing account)."),
    ] = None,
    prompt: Annotated[str, typer.Option(help="Prompt of the test game.")] = DEFAULT_PROMPT,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the test game to be generated.")
    ] = 120.0,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the test game (default: delete it at the end).")
    ] = False,
    require_blob: Annotated[
        bool,
        typer.Option(
            "--require-blob",
            help="Fail when the cover image is not on blob storage (local /static).",
        ),
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """Phase 4, "Configuration Verification": walk the API as a new user would.

    In order, each a PASS/FAIL line with its time: /health is 200 and healthy; /docs is the
    Swagger UI and /openapi.json lists the contract's endpoints; register a test user, log in
    (JSON and OAuth2 form), /auth/me; create a game from --prompt and follow its task to the end;
    the game's cover image loads anonymously (and where it lives: Azure Blob, Azurite or local
    /static); /games/{id}/play is sandboxed HTML; the game is in /games/feed; like and unlike are
    idempotent; a push subscription comes and goes; the test game is deleted (unless --keep).
    The test user stays (the API cannot delete accounts).

    Example:

        paletai migrate check https://NEW_APP.azurewebsites.net --require-blob --json phase4.json
    """
    base = _base_url(url)
    if email is not None and not password:
        raise typer.BadParameter("--email needs --password", param_hint="--password")
    options = CheckOptions(
        base_url=base,
        email=email,
        password=password,
        prompt=prompt,
        timeout=timeout,
        keep=keep,
        require_blob=require_blob,
    )
    report = CheckReport("migrate check", base, echo=lambda c: print_check(console, c))
    console.print(f"Phase 4: checking [bold]{escape(base)}[/bold]")

    def on_stage(status: str, stage: str, seconds: float) -> None:
        console.print(f"     task {status:<9} stage {stage:<12} at {seconds:5.1f} s")

    asyncio.run(run_phase4(options, report, on_stage))
    finish_checks(report, json_out)


@migrate_app.command()
def load(
    url: Annotated[str, typer.Argument(help="Base URL of YOUR OWN PaletAI deployment.")],
    games: Annotated[int, typer.Option(min=1, max=50, help="Test games to create first.")] = 5,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Read requests in flight at once.")
    ] = 4,
    requests: Annotated[
        int, typer.Option(min=1, max=10000, help="Total read requests (feed, game, health).")
    ] = 200,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the test games to be generated.")
    ] = 120.0,
    max_seconds: Annotated[
        float, typer.Option(min=1, help="Stop the read load after this many seconds.")
    ] = 120.0,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the test games.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Phase 6, "Performance Testing": N test games, then a bounded read load.

    Creates --games test games (new test accounts, within DAILY_PROMPT_LIMIT) and follows them
    to the end: all must succeed and all must have a cover image. Then sends --requests GET
    requests spread over /games/feed, /games/{id} and /health, --concurrency at a time (never
    longer than --max-seconds), and reports per endpoint requests/s, p50/p95/p99 and errors,
    and the checklist's criterion "Response times < 2 seconds average" as a PASS/FAIL line.
    The test games are deleted at the end (unless --keep).

    It only ever talks to URL. Point it only at your own deployment.

    Example:

        paletai migrate load https://NEW_APP.azurewebsites.net --games 5 --json phase6.json
    """
    base = _base_url(url)
    options = LoadOptions(
        base_url=base,
        games=games,
        concurrency=concurrency,
        requests=requests,
        timeout=timeout,
        max_seconds=max_seconds,
        keep=keep,
    )
    report = CheckReport("migrate load", base, echo=lambda c: print_check(console, c))
    console.print(
        f"Phase 6: {games} games, then {requests} reads at concurrency {concurrency} against "
        f"[bold]{escape(base)}[/bold] (pass: average < {AVERAGE_LIMIT_SECONDS:g} s)"
    )
    with Progress(
        TextColumn("     read load"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        reads = progress.add_task("reads", total=requests, visible=False)
        asyncio.run(
            run_load(
                options,
                report,
                lambda line: console.print(f"     {escape(line)}"),
                lambda: progress.update(reads, advance=1, visible=True),
            )
        )
    load_figures = report.extra.get("load")
    if isinstance(load_figures, dict):
        console.print(
            f"     overall: {load_figures['requests']} requests, "
            f"{load_figures['requests_per_second']} req/s, mean {load_figures['mean_ms']} ms, "
            f"p50 {load_figures['p50_ms']} ms, p95 {load_figures['p95_ms']} ms, "
            f"p99 {load_figures['p99_ms']} ms"
        )
    finish_checks(report, json_out)


@migrate_app.command()
def dns(
    host: Annotated[str, typer.Argument(help="The custom domain, e.g. api.paletai.com.")],
    expect: Annotated[
        str,
        typer.Option(help="What HOST should point at: NEW_APP.azurewebsites.net (or an IP)."),
    ],
    url_path: Annotated[str, typer.Option(help="Path to GET on HOST.")] = "/health",
    resolver: Annotated[
        str | None,
        typer.Option(help="Nameserver for the CNAME query: IP or IP:PORT (default: the system's)."),
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option("--insecure-http", help="GET http://HOST instead of https:// (tests)."),
    ] = False,
    port: Annotated[int | None, typer.Option(help="Port for the GET (default 443/80).")] = None,
    expect_version: Annotated[
        str | None,
        typer.Option(help="The version /health must report (tells the new app from the old)."),
    ] = None,
    max_ttl: Annotated[
        int,
        typer.Option(
            min=0, help="The TTL (seconds) HOST's record must have at the resolver, at most."
        ),
    ] = LOWERED_TTL_SECONDS,
    json_out: JsonOut = None,
) -> None:
    """Phase 5, "Verify DNS Propagation": HOST points at the new app, which answers there.

    Resolves HOST, reads its CNAME chain and looks for --expect in it; when the chain does not
    lead there (an A record), resolves HOST and --expect to addresses and compares them.
    The TTL the resolver gives HOST's record must be at most --max-ttl (the checklist's "Lowered
    DNS TTL to 300 seconds"; a caching resolver counts an old, longer TTL down from above it).
    Then GETs https://HOST/health (certificate checked) and, with --expect-version, checks that
    the version is the new one. Run it again until it passes: DNS caches hold the old answer for
    up to the old TTL.

    Example:

        paletai migrate dns api.paletai.com --expect NEW_APP.azurewebsites.net
    """
    problem = resolver_problem(resolver)
    if problem:
        fail(problem)
    options = DnsOptions(
        host=host,
        expect=expect,
        url_path=url_path,
        resolver=resolver,
        insecure_http=insecure_http,
        port=port,
        expect_version=expect_version,
        max_ttl=max_ttl,
    )
    report = CheckReport("migrate dns", host, echo=lambda c: print_check(console, c))
    console.print(f"Phase 5: does [bold]{escape(host)}[/bold] point at {escape(expect)}?")
    asyncio.run(run_dns(options, report))
    note = report.extra.get("note")
    if note:
        console.print(f"     note: {escape(str(note))}")
    finish_checks(report, json_out)


@migrate_app.command()
def preflight(
    tenant: Annotated[
        str | None, typer.Option(help="The NEW Azure tenant ID: az must be signed in to it.")
    ] = None,
    subscription: Annotated[
        str | None,
        typer.Option(help="The NEW subscription ID: visible, and Contributor or Owner on it."),
    ] = None,
    assignee: Annotated[
        str | None,
        typer.Option(
            help="Whose roles to check (UPN, app id or object id; default: az's signed-in "
            "account; give the object id for a managed identity)."
        ),
    ] = None,
    mongodb_uri: Annotated[
        str | None,
        typer.Option(
            "--mongodb-uri", help="The MongoDB to migrate (default: DB_PATH of the settings)."
        ),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Database name (default: the URI's path).")
    ] = None,
    settings_file: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            help="App settings file (`settings export` / `az webapp config appsettings list` "
            "JSON): its values win over the environment and .env.",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds each MongoDB, AI, OneSignal, storage call may take."),
    ] = 10.0,
    az_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds each `az` call may take.")
    ] = 60.0,
    json_out: JsonOut = None,
) -> None:
    """Pre-Migration, "Information Gathering" and "Database Preparation", as checks.

    One PASS/FAIL line each: `az` is signed in to --tenant; --subscription is visible and the
    account holds Contributor or Owner on it (at the subscription or above; a group's role
    counts); the MongoDB URI connects and authenticates (server version, data size) and change
    streams open (else `db sync` cannot run: use backup/restore); each configured AI key
    (OpenAI, Azure OpenAI, Anthropic) lists models; OneSignal accepts its REST API key; the
    storage account answers. An unconfigured provider is "not configured", a failure only when
    it is the AI_PROVIDER in force. Azure checks run when --tenant or --subscription is given.
    Run it in the new app's SSH console to measure MongoDB from the new region. Secrets are
    never printed.

    Example:

        paletai migrate preflight --tenant TENANT_ID --subscription SUB_ID \\
            --settings old-app-settings.json --json preflight.json
    """
    from paletai.config import SettingsError, load_settings
    from paletai.ops.azure.settings import SettingsFileError, parse_settings

    values: dict[str, str] = {}
    if settings_file is not None:
        try:
            text = settings_file.read_text(encoding="utf-8")
            values = {s.name: s.value for s in parse_settings(text, str(settings_file))}
        except OSError as exc:
            fail(f"cannot read --settings {settings_file}: {exc.strerror}; give an existing file")
        except SettingsFileError as exc:
            fail(str(exc))
    try:
        settings = load_settings(**values)
    except SettingsError as exc:
        problem = str(exc).splitlines()[0]
        fail(
            f"the settings are not valid: {problem}; fix it in --settings, .env or the environment"
        )
    options = PreflightOptions(
        settings=settings,
        tenant=tenant,
        subscription=subscription,
        assignee=assignee,
        mongodb_uri=mongodb_uri,
        db_name=db,
        timeout=timeout,
        az_timeout=az_timeout,
    )
    if mongodb_uri is not None:
        from paletai.config import uri_problem

        wrong = uri_problem(mongodb_uri)
        if not mongodb_uri.startswith(("mongodb://", "mongodb+srv://")):
            wrong = "must start with mongodb:// or mongodb+srv://"
        if wrong:
            fail(f"--mongodb-uri is not a MongoDB URI: {redact(wrong, options.secrets())}")
    parts = [f"subscription {subscription}"] if subscription else []
    if tenant and not subscription:
        parts.append(f"tenant {tenant}")
    target = ", ".join(parts) or "no Azure subscription given"
    report = CheckReport("migrate preflight", target, echo=lambda c: print_check(console, c))
    console.print(f"Pre-migration: checking [bold]{escape(target)}[/bold]")
    if not (tenant or subscription):
        console.print("     note: no --tenant/--subscription: the Azure checks are skipped")
    asyncio.run(run_preflight(options, report))
    for warning in report.extra.get("warnings") or []:
        console.print(f"[bold yellow]WARN[/] {escape(str(warning))}", soft_wrap=True)
    if not report.extra.get("region"):
        console.print(
            "     note: not run on Azure App Service (no REGION_NAME): MongoDB was reached from "
            "this machine; run preflight in the new app's SSH console to test the new region",
            soft_wrap=True,
        )
    finish_checks(report, json_out)
