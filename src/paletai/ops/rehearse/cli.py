"""`paletai migrate rehearse`, added to the migrate sub-app by `register(migrate_app)`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape

from paletai.config import SettingsError
from paletai.ops.cli import console, fail
from paletai.ops.rehearse.harness import (
    AzuriteMissing,
    Children,
    RehearsalError,
    RehearseOptions,
    rehearse,
)
from paletai.ops.results import TrafficFigures


def default_workdir() -> Path:
    """`<data dir>/rehearsals/<UTC time>`: under PALETAI_DATA_DIR (default ./.paletai, which
    git ignores), never loose in the current directory."""
    from paletai.config import load_settings

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    return load_settings().data_dir / "rehearsals" / f"paletai-rehearsal-{stamp}"


def rehearse_command(
    workdir: Annotated[
        Path | None,
        typer.Option(
            help="Where databases, logs, JSON results and the report go (new or empty); "
            "default: a new folder under the data dir (PALETAI_DATA_DIR)/rehearsals."
        ),
    ] = None,
    users: Annotated[int, typer.Option(min=1, max=500, help="Users to seed.")] = 20,
    games: Annotated[int, typer.Option(min=1, max=500, help="Games to seed.")] = 40,
    traffic_rps: Annotated[
        float, typer.Option(min=0.5, max=100, help="Live traffic, requests per second.")
    ] = 10.0,
    seconds: Annotated[
        float, typer.Option(min=1, max=3600, help="Live traffic on the old app before cutover.")
    ] = 20.0,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave everything running at the end, until Ctrl-C."),
    ] = False,
) -> None:
    """The whole migration on this machine, under live traffic, then the report.

    Starts two embedded MongoDBs (old, new), Azurite with two accounts and the old PaletAI;
    seeds it through its API and keeps live traffic on it (reads, likes, new games, on
    loopback). Then: settings diff, db sync, storage copy, db cutover --reverse (maintenance on
    the old app; the pause is measured), the new PaletAI, the traffic switched to it (the "DNS"
    cutover), storage copy --rewrite-urls, migrate check and load, a search for lost writes
    (every acknowledged game and like must be on the new side), db verify, and the report.
    Every process is stopped at the end (Ctrl-C included). Needs Azurite (`make tools`).
    Exit 0 when everything passed, 1 when something failed, 2 when it could not run. Example:

        paletai migrate rehearse --users 5 --games 8 --traffic-rps 5 --seconds 8
    """
    if workdir is None:
        try:
            workdir = default_workdir()
        except SettingsError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
    if workdir.exists() and any(workdir.iterdir()):
        fail(f"{workdir} is not empty: give a new --workdir")
    options = RehearseOptions(workdir.resolve(), users, games, traffic_rps, seconds, keep)
    children = Children()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        outcome = asyncio.run(rehearse(options, children, lambda m: console.print(escape(m))))
        if keep:
            console.print("--keep: still running (Ctrl-C to stop):")
            for name, pid in children.running().items():
                console.print(f"  {escape(name)}: pid {pid}")
            console.print(f"  new app: {outcome.result.urls.get('new')}")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except AzuriteMissing as exc:
        fail(str(exc))
    except RehearsalError as exc:
        console.print(f"[bold red]rehearsal failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("interrupted: stopping everything")
        raise typer.Exit(130) from None
    finally:
        children.stop_all()
        signal.signal(signal.SIGTERM, previous)
    result, traffic = outcome.result, outcome.result.traffic or TrafficFigures()
    console.print(f"report: {escape(str(outcome.report_path))}")
    console.print(
        f"write pause {result.write_pause_seconds} s (db cutover); "
        f"{traffic.requests} live requests, {traffic.acknowledged_games} games and "
        f"{traffic.acknowledged_likes} likes acknowledged, {traffic.lost_writes} "
        f"lost, {traffic.maintenance_503} refused with 503, "
        f"{traffic.unexpected_errors} unexpected errors; "
        f"{result.seconds} s in all"
    )
    for line in outcome.failed_lines:
        console.print(f"[red]{escape(line)}[/]")
    style = "green" if outcome.ok else "red"
    console.print(f"[bold {style}]{escape(outcome.summary)}[/]")
    if not outcome.ok:
        raise typer.Exit(1)


def register(migrate_app: typer.Typer) -> None:
    """Add `rehearse` to the `paletai migrate` sub-app."""
    migrate_app.command("rehearse")(rehearse_command)
