"""`paletai migrate report`, added to the migrate sub-app by `register(migrate_app)`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from paletai.ops.cli import console
from paletai.ops.report.checklist import write_report


def report_command(
    dir: Annotated[
        Path,
        typer.Option(
            "--dir",
            help="Directory holding the --json results of the other commands.",
            exists=True,
            file_okay=False,
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Markdown file to write (default DIR/report.md).")
    ] = None,
    title: Annotated[str, typer.Option(help="Title of the report.")] = "PaletAI migration report",
) -> None:
    """The migration checklist, filled in with what was measured.

    Reads every `*.json` in DIR written with `--json` by the other commands (`migrate
    preflight`, `inventory`, `check`, `dns`, `load`, `insights`, `logs`, `rehearse`; `settings
    export|diff`; `deploy verify`, `domain add`, `decommission`; `db backup`, `restore`,
    `verify`, `sync`, `cutover`; `storage copy`), each read by its `command` field (a file that is
    not such a result is listed as unreadable, never guessed); missing ones leave their items "not
    measured". Writes Markdown phase by phase: [x] passed, [!] failed, [ ] not measured, [-] not
    measurable from here (with why), each with the measured evidence; secrets are masked. Exit 0
    when nothing failed, 1 otherwise. Example:

        paletai migrate report --dir ./migration-day --out migration-report.md
    """
    report, path = write_report(dir, out, title)
    console.print(f"report written to {escape(str(path))}")
    for line in report.failed_lines:
        console.print(f"[red]{escape(line)}[/]")
    style = "green" if report.ok else "red"
    console.print(f"[bold {style}]{escape(report.summary)}[/]")
    if not report.ok:
        raise typer.Exit(1)


def register(migrate_app: typer.Typer) -> None:
    """Add `report` to the `paletai migrate` sub-app."""
    migrate_app.command("report")(report_command)
