"""Rich output for the database commands: one progress bar per collection, stderr console."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# Progress and status go to stderr, so stdout stays clean for reports.
from paletai.ops.cli import err as console


class MegabytesPerSecondColumn(ProgressColumn):
    """MB/s from the task's `bytes` field (completed counts documents, not bytes)."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        done = float(task.fields.get("bytes", 0))
        if not elapsed:
            return Text("   - MB/s", style="progress.data.speed")
        return Text(f"{done / elapsed / 1e6:6.1f} MB/s", style="progress.data.speed")


class DocsPerSecondColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if not elapsed:
            return Text("    - docs/s")
        return Text(f"{task.completed / elapsed:8.0f} docs/s")


def collection_progress(*, quiet: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(bar_width=28),
        MofNCompleteColumn(),
        DocsPerSecondColumn(),
        MegabytesPerSecondColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )
