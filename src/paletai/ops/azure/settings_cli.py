"""`paletai settings ...`: carry the old App Service settings to the new app.

The checklist's "Exported current app settings" step writes
`az webapp config appsettings list --output json > old-app-settings.json`; these commands read
that file, show it with secrets masked, compare two of them, check the values against PaletAI's
Settings, and apply one with `az webapp config appsettings set ... --settings @FILE`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.settings import (
    AppSetting,
    SettingsFileError,
    Validation,
    apply_settings,
    diff_settings,
    parse_settings,
    validate_settings,
    write_settings_file,
)
from paletai.ops.checks import names
from paletai.ops.checks.phase4 import Check, CheckReport, print_check
from paletai.ops.cli import JsonOut, console, fail, finish_checks

settings_app = typer.Typer(
    help=(
        "Carry the App Service settings across: export (normalise, secrets masked on screen), "
        "diff (what changed, and what PaletAI would refuse), apply (through the az CLI)."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)


def _read(source: str) -> list[AppSetting]:
    """Settings from a file, or stdin for `-`; exit 2 with the reason when unreadable."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror}")
    try:
        return parse_settings(text, "stdin" if source == "-" else source)
    except SettingsFileError as exc:
        fail(str(exc))


def _table(settings: Sequence[AppSetting], title: str) -> Table:
    table = Table("name", "value", "slot", title=title)
    for setting in settings:
        table.add_row(
            escape(setting.name),
            escape(setting.shown),
            "yes" if setting.slot_setting else "",
        )
    return table


def _validation_checks(report: CheckReport, validation: Validation, label: str) -> None:
    detail = "PaletAI's Settings accept these values"
    if validation.problems:
        detail = "; ".join(validation.problems)
    report.add(Check(f"{names.SETTINGS_VALID} ({label})", not validation.problems, 0.0, detail))
    if validation.unknown:
        console.print(
            f"     not read by PaletAI (kept as they are): {escape(', '.join(validation.unknown))}",
            soft_wrap=True,
        )
    report.extra.setdefault("validation", {})[label] = {
        "problems": validation.problems,
        "not_read_by_paletai": validation.unknown,
    }


def _shown(settings: Sequence[AppSetting]) -> list[dict[str, Any]]:
    return [{"name": s.name, "value": s.shown, "slotSetting": s.slot_setting} for s in settings]


@settings_app.command("export")
def export(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="The JSON `az webapp config appsettings list --output json` wrote; - for stdin.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Write the normalised settings here (values in clear, mode 0600)."),
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Normalise exported app settings and show them with secrets masked.

    Reads the list az writes ({"name", "value", "slotSetting"}, or a plain {name: value}
    object), sorts it by name and refuses repeated names. The table masks every value whose
    name contains KEY, SECRET, PASSWORD, CONNECTION_STRING, TOKEN or DB_PATH (and any value with
    a password or account key in it); the --out file keeps the real values (it is what `apply`
    sends), so it is created readable by you only. Also checks the values against PaletAI's
    Settings. Example:

        az webapp config appsettings list --name OLD_APP --resource-group OLD_RG --output json \\
          | paletai settings export --from - --out old-app-settings.json
    """
    settings = _read(source)
    console.print(_table(settings, f"{len(settings)} app settings from {source}"))
    report = CheckReport("settings export", source, echo=lambda c: print_check(console, c))
    report.extra["settings"] = _shown(settings)
    if out is not None:
        write_settings_file(out, settings)
        report.add(Check("written", True, 0.0, f"{len(settings)} settings -> {out} (mode 0600)"))
    _validation_checks(report, validate_settings(settings), source)
    finish_checks(report, json_out)


@settings_app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="Settings of the old app (az list JSON).")],
    new: Annotated[str, typer.Argument(help="Settings of the new app, or the file to apply.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Also fail (exit 1) when anything differs.")
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """What differs between two settings exports, and whether PaletAI accepts the new one.

    Lists added, removed and changed names; non-secret values are shown old -> new, secrets
    only as "changed". Then validates NEW against PaletAI's Settings (a bad boolean, a DB_PATH
    that is not a mongodb:// URI, a provider without its key...) so you learn before applying.
    Exit 1 when NEW has problems (or, with --strict, when anything differs). Example:

        paletai settings diff old-app-settings.json new-app-settings.json --json settings-diff.json
    """
    before, after = _read(old), _read(new)
    result = diff_settings(before, after)
    table = Table("", "name", "old", "new", title=f"{escape(old)} -> {escape(new)}")
    for s in result.added:
        table.add_row("[green]added[/]", escape(s.name), "", escape(s.shown))
    for s in result.removed:
        table.add_row("[red]removed[/]", escape(s.name), escape(s.shown), "")
    for o, n in result.changed:
        secret = o.secret or n.secret
        slot = " (slotSetting)" if o.slot_setting != n.slot_setting else ""
        table.add_row(
            "[yellow]changed[/]",
            escape(n.name) + slot,
            "(secret)" if secret else escape(o.value),
            "(secret, changed)" if secret else escape(n.value),
        )
    if result.empty:
        console.print(f"no differences ({result.same} settings identical)")
    else:
        console.print(table)
        console.print(
            f"{len(result.added)} added, {len(result.removed)} removed, "
            f"{len(result.changed)} changed, {result.same} unchanged"
        )
    report = CheckReport("settings diff", f"{old} -> {new}", echo=lambda c: print_check(console, c))
    report.extra["diff"] = result.as_dict()
    if strict:
        report.add(Check("no differences (--strict)", result.empty, 0.0, "see the table above"))
    _validation_checks(report, validate_settings(after), new)
    finish_checks(report, json_out)


@settings_app.command("apply")
def apply(
    file: Annotated[str, typer.Argument(help="Settings to apply (az list JSON; - for stdin).")],
    app: Annotated[str, typer.Option("--app", help="The App Service app to configure.")],
    resource_group: Annotated[
        str, typer.Option("--resource-group", "-g", help="Its resource group.")
    ],
    slot: Annotated[str | None, typer.Option(help="Deployment slot, if not production.")] = None,
    subscription: Annotated[
        str | None,
        typer.Option(help="Subscription id or name (default: az's current one)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what would be set and print the az command line (no secret in it); "
            "change nothing.",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Apply even when PaletAI's Settings find problems.")
    ] = False,
    json_out: JsonOut = None,
) -> None:
    """Set these app settings on an App Service app through the az CLI.

    Runs `az webapp config appsettings set --name APP --resource-group RG --settings @FILE`
    where FILE is a temporary copy readable by you only, deleted afterwards: no secret value
    is ever on a command line. Settings not in the file are left as they are on the app.
    Refuses settings PaletAI would not start with, unless --force. With --dry-run, prints the
    table and the exact `az ...` line (one line, starting with `az `) and runs nothing. Log in
    first (`az login`, `az account set --subscription NEW_SUBSCRIPTION_ID`). Example:

        paletai settings apply old-app-settings.json --app NEW_APP -g rg-paletai-prod --dry-run
    """
    settings = _read(file)
    report = CheckReport("settings apply", f"{app} ({resource_group})")
    report.echo = lambda c: print_check(console, c)
    validation = validate_settings(settings)
    _validation_checks(report, validation, file)
    report.extra.update(app=app, resource_group=resource_group, slot=slot, dry_run=dry_run)
    report.extra["settings"] = _shown(settings)
    if validation.problems and not force:
        console.print("not applied: fix the problems above (or --force)")
        finish_checks(report, json_out)
    secrets = [s.value for s in settings if s.secret and s.value]
    try:
        az = AzCli.locate(subscription, secrets, dry_run=dry_run)
    except DeployError as exc:
        fail(str(exc), 1)
    if dry_run:
        console.print(_table(settings, f"would set {len(settings)} settings on {escape(app)}"))
    step = "az webapp config appsettings set"
    try:
        result = apply_settings(az, settings, app, resource_group, slot)
    except DeployError as exc:
        report.add(Check(step, False, 0.0, str(exc)))
        finish_checks(report, json_out)
        return
    report.extra["az_argv"] = result.argv
    if dry_run:
        report.add(Check("dry run", True, 0.0, f"{len(settings)} settings, nothing changed"))
        finish_checks(report, json_out)
        return
    missing = sorted({s.name for s in settings} - set(result.names_set))
    detail = f"{len(settings)} settings set on {app}"
    if result.names_set and missing:
        detail += f"; az's answer lacks {', '.join(missing)}"
    report.add(Check(step, not (result.names_set and missing), 0.0, detail))
    finish_checks(report, json_out)
