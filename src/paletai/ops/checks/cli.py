"""`paletai migrate ...`: the checklist's verification phases (4, 5, 6) as commands.

Each prints one PASS/FAIL line per check and a summary, exits 0 only when every check passed
(1 otherwise, 2 for a usage mistake) and writes `--json FILE` for the migration report.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from paletai.ops.checks.api import normalise_base_url
from paletai.ops.checks.dns import DnsOptions, resolver_problem, run_dns
from paletai.ops.checks.load import AVERAGE_LIMIT_SECONDS, LoadOptions, run_load
from paletai.ops.checks.phase4 import (
    DEFAULT_PROMPT,
    CheckOptions,
    CheckReport,
    print_check,
    run_phase4,
)
from paletai.ops.cli import JsonOut, console, fail, finish_checks

migrate_app = typer.Typer(
    help=(
        "Verify a migrated PaletAI: Phase 4 (check), Phase 5 (dns) and Phase 6 (load) of the "
        "migration checklist. Each exits 0 only when every check passed; --json FILE writes "
        "the result for the migration report."
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
    json_out: JsonOut = None,
) -> None:
    """Phase 5, "Verify DNS Propagation": HOST points at the new app, which answers there.

    Resolves HOST, reads its CNAME chain and looks for --expect in it; when the chain does not
    lead there (an A record), resolves HOST and --expect to addresses and compares them.
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
    )
    report = CheckReport("migrate dns", host, echo=lambda c: print_check(console, c))
    console.print(f"Phase 5: does [bold]{escape(host)}[/bold] point at {escape(expect)}?")
    asyncio.run(run_dns(options, report))
    note = report.extra.get("note")
    if note:
        console.print(f"     note: {escape(str(note))}")
    finish_checks(report, json_out)
