"""The CLI glue every ops command shares: consoles, one-line failures, `--json` writing."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.markup import escape

from paletai.ops.checks.phase4 import CheckReport, print_summary
from paletai.ops.errors import OpsError
from paletai.ops.results import OpsResult

T = TypeVar("T")

console = Console()  # results and tables
err = Console(stderr=True)  # progress and errors, so stdout stays the result

JsonOut = Annotated[
    Path | None,
    typer.Option("--json", help="Also write the result as JSON to this file (folder created)."),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on one line (no traceback) and exit with `code`."""
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; an OpsError or a database error ends it with one line."""
    try:
        return asyncio.run(coro)
    except OpsError as exc:
        fail(str(exc), exc.exit_code)
    except PyMongoError as exc:
        fail(f"{type(exc).__name__}: {exc}")


def now_iso() -> str:
    """Now, UTC, to the second: the `started_at` of a command's `--json`."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def write_json(path: Path | None, result: OpsResult) -> None:
    """Write a command's result to its `--json` file, creating the folder it goes in."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.model_dump_json(indent=2, by_alias=True) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}; give --json a writable file path")


def finish_checks(report: CheckReport, json_out: Path | None) -> None:
    """End a check command: its summary line, its `--json`, exit 1 unless every check passed."""
    print_summary(console, report)
    try:
        result = report.result()
    except ValidationError as exc:
        # A value the server sent that the result cannot hold: say so, keep the verdict.
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        fail(f"{report.command}: cannot write --json: {where}: {first['msg']}", 1)
    write_json(json_out, result)
    if json_out is not None:
        console.print(f"report written to {escape(str(json_out))}")
    if not report.ok:
        raise typer.Exit(1)
