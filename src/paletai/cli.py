"""The `paletai` command: serve, worker, config, and the operations kit (db, storage, ...)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core
import typer.rich_utils
from rich.console import Console
from rich.table import Table

from paletai.config import Settings, SettingsError, get_settings, load_settings
from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.azure.monitor_cli import register as register_monitoring
from paletai.ops.azure.settings_cli import settings_app
from paletai.ops.checks.cli import migrate_app
from paletai.ops.db.cli import db_app
from paletai.ops.rehearse.cli import register as register_rehearsal
from paletai.ops.report.cli import register as register_report
from paletai.ops.storage.cli import storage_app


def _readable_help() -> None:
    """`--help` that is whole when piped or captured, and flags without a `<bool>` type.

    Rich falls back to 80 columns off a terminal, which cut env var names and examples; a flag
    takes no value, so the type typer shows for it only confuses.
    """
    if typer.rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
        typer.rich_utils.MAX_WIDTH = int(os.environ.get("COLUMNS") or 120)
    display = getattr(typer.core.TyperOption, "display_type_rich", None)
    if display is None:  # another typer: nothing to mend
        return

    def without_flag_type(self: typer.core.TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else display(self, ctx)

    typer.core.TyperOption.display_type_rich = without_flag_type  # type: ignore[method-assign,assignment]


_readable_help()

app = typer.Typer(
    help="PaletAI: the game-creation backend and the kit that migrates it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
config_app = typer.Typer(help="Show and check the settings in force.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(deploy_app, name="deploy")
register_report(migrate_app)
register_rehearsal(migrate_app)
register_monitoring(migrate_app)
app.add_typer(migrate_app, name="migrate")
app.add_typer(settings_app, name="settings")
app.add_typer(storage_app, name="storage", help="Blob storage operations: copy between accounts.")

console = Console()
err = Console(stderr=True)


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        # One line per bad setting, never wrapped: what is wrong and in which setting.
        for line in str(exc).splitlines():
            err.print(f"[red]PaletAI cannot start, fix this setting:[/red] {line}", soft_wrap=True)
        raise typer.Exit(1) from None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[
        int | None, typer.Option("--workers", help="in-process generation workers")
    ] = None,
) -> None:
    """Run the API. With no DB_PATH, start the embedded MongoDB stand-in first (data under
    PALETAI_DATA_DIR) and stop it on exit."""
    import uvicorn

    from paletai.db.client import DEFAULT_DB_NAME
    from paletai.db.embedded import EmbeddedMongo, EmbeddedMongoError, port_is_free

    settings = _settings_or_exit()
    # Before anything starts: a busy port would otherwise fail only after the database is up.
    if not port_is_free(host, port):
        other = 9000 if port != 9000 else 9001
        err.print(
            f"[red]port {port} on {host} is already in use:[/red] stop what listens there or "
            f"choose another port (`paletai serve --port {other}`, or `PORT={other} make run`)",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    embedded: EmbeddedMongo | None = None
    uri_file = settings.data_dir / "mongodb-uri"
    if settings.DB_PATH is None:
        embedded = EmbeddedMongo(settings.data_dir / "db", port=settings.PALETAI_DB_PORT)
        try:
            embedded.start()
        except EmbeddedMongoError as exc:
            pinned = settings.PALETAI_DB_PORT is not None
            hint = " (PALETAI_DB_PORT: choose another or unset it)" if pinned else ""
            err.print(
                f"[red]could not start the embedded database:[/red] {exc}{hint}", soft_wrap=True
            )
            raise typer.Exit(1) from None
        uri = embedded.database_uri(settings.DB_NAME or DEFAULT_DB_NAME)
        os.environ["DB_PATH"] = uri
        # For tools: mongosh "$(cat .paletai/mongodb-uri)" lands in the app's database.
        _write_private(uri_file, uri + "\n")
        embedded.watch(restart_delay=settings.PALETAI_DB_RESTART_DELAY_SECONDS)
        console.print(
            f"[green]embedded MongoDB (nx-27017)[/green] on {uri} with data in "
            f"{embedded.data_dir} (URI in {uri_file})",
            soft_wrap=True,
        )
    if workers is not None:
        os.environ["WORKER_CONCURRENCY"] = str(workers)
    get_settings.cache_clear()

    def _sigterm(signum: int, frame: object) -> None:
        # uvicorn shuts down gracefully, then re-raises SIGTERM to this handler: exit cleanly
        # through the `finally` below so the embedded database is stopped too.
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _sigterm)
    try:
        from paletai.core.server import uvicorn_options
        from paletai.main import create_app

        app_settings = _settings_or_exit()
        application = create_app(app_settings)
        url = f"http://{host}:{port}"
        console.print(f"PaletAI on [bold]{url}[/bold]  (console: /, API docs: /docs)")
        # The app decides client addresses itself (core/network.py, FORWARDED_ALLOW_IPS):
        # uvicorn's own rewrite is off, and given the same list should anyone turn it on.
        uvicorn.run(
            application,
            host=host,
            port=port,
            log_level="info",
            proxy_headers=False,
            forwarded_allow_ips=app_settings.FORWARDED_ALLOW_IPS,
            **uvicorn_options(app_settings),
        )
    finally:
        if embedded is not None:
            embedded.stop()
            uri_file.unlink(missing_ok=True)


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="tasks run at once (default WORKER_CONCURRENCY)")
    ] = None,
) -> None:
    """Run generation workers as their own process (scale-out). Needs DB_PATH. SIGTERM finishes
    or hands back what it holds."""
    from paletai.core import telemetry
    from paletai.core.logging import configure_logging
    from paletai.core.runtime import StartupError, open_context
    from paletai.games.flows import game_workers

    settings = _settings_or_exit()
    configure_logging(settings.LOG_LEVEL)
    # Before the MongoDB client exists, so it gets the tracing listener.
    telemetry.configure(settings)

    async def run() -> None:
        async with open_context(settings) as ctx:
            pool = game_workers(ctx, concurrency)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await pool.start()
            console.print(f"worker {pool.identity}: concurrency {pool.concurrency}")
            await stop.wait()
            console.print("stopping: finishing or handing back running tasks")
            await pool.stop()

    try:
        asyncio.run(run())
    except StartupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@config_app.command("show")
def config_show() -> None:
    """The settings in force (secrets masked)."""
    settings = _settings_or_exit()
    table = Table("setting", "value", title="PaletAI settings")
    for name, value in settings.public_view().items():
        table.add_row(name, "" if value is None else str(value))
    console.print(table)


@config_app.command("check")
def config_check() -> None:
    """Exit 1 with one line per problem when the settings cannot run the service."""
    settings = _settings_or_exit()
    problems = settings.problems()
    for line in problems:
        err.print(line)
    if problems:
        raise typer.Exit(1)
    console.print("settings OK")


def main() -> None:  # pragma: no cover - console entry
    with contextlib.suppress(KeyboardInterrupt):
        app()
    sys.exit(0)
