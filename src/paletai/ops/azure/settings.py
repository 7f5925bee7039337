"""App Service settings, as `az webapp config appsettings list --output json` writes them:
read, normalise, mask for display, compare, validate against PaletAI's Settings, and apply
through the `az` CLI without putting a secret on a command line.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from paletai.config import Settings, format_validation_error
from paletai.ops.azure.az import AzCli

MASK = "********"
SECRET_NAME_PARTS = (
    "KEY",
    "SECRET",
    "PASSWORD",
    "CONNECTION_STRING",
    "CONNECTIONSTRING",
    "TOKEN",
    "DB_PATH",
)
# Values that carry a credential whatever their name: a URI with user:password@, a storage key.
_SECRET_VALUE = re.compile(
    r"://[^/@\s]+:[^/@\s]+@|AccountKey=|SharedAccessSignature=|InstrumentationKey=", re.I
)


class SettingsFileError(Exception):
    """The file is not an app settings list; the message says what is wrong and where."""


@dataclass(frozen=True)
class AppSetting:
    name: str
    value: str
    slot_setting: bool = False

    @property
    def secret(self) -> bool:
        return is_secret(self.name, self.value)

    @property
    def shown(self) -> str:
        """The value for screens and reports: masked when it is a secret."""
        return MASK if self.secret and self.value else self.value

    def as_az(self) -> dict[str, Any]:
        """The shape `az webapp config appsettings list` writes and `set --settings @file` reads."""
        return {"name": self.name, "slotSetting": self.slot_setting, "value": self.value}


def is_secret(name: str, value: str = "") -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS) or bool(_SECRET_VALUE.search(value))


def parse_settings(text: str, source: str) -> list[AppSetting]:
    """Settings from az's JSON list ({"name","value","slotSetting"}) or a plain {name: value}
    object, sorted by name; SettingsFileError for anything else or a repeated name."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsFileError(f"{source}: not JSON ({exc})") from None
    items: Iterable[tuple[str, Any, Any]]
    if isinstance(data, dict):
        items = ((str(k), v, False) for k, v in data.items())
    elif isinstance(data, list):
        rows = []
        for i, entry in enumerate(data):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise SettingsFileError(
                    f'{source}: entry {i} is not {{"name", "value", "slotSetting"}}: '
                    f"{str(entry)[:80]}"
                )
            rows.append((entry["name"], entry.get("value"), entry.get("slotSetting", False)))
        items = rows
    else:
        raise SettingsFileError(
            f"{source}: expected the list `az webapp config appsettings list --output json` "
            f"writes, got a JSON {type(data).__name__}"
        )
    settings: dict[str, AppSetting] = {}
    for name, value, slot in items:
        name = name.strip()
        if not name:
            raise SettingsFileError(f"{source}: a setting has an empty name")
        if name in settings:
            raise SettingsFileError(f"{source}: {name} appears twice")
        text_value = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        settings[name] = AppSetting(name, text_value, bool(slot))
    return [settings[name] for name in sorted(settings)]


def dump_settings(settings: Sequence[AppSetting]) -> str:
    return json.dumps([s.as_az() for s in settings], indent=2) + "\n"


def write_settings_file(path: str | os.PathLike[str], settings: Sequence[AppSetting]) -> None:
    """Write settings as az's list, values in clear, in a file readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(dump_settings(settings))


# ---------------------------------------------------------------------------------------------
# Validation: the values alone, as PaletAI would read them (no .env, no local environment)


class _ValuesOnlySettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the file's values: the operator's own environment must not hide a problem.
        return (init_settings,)


@dataclass
class Validation:
    problems: list[str]
    unknown: list[str]  # names PaletAI does not read (App Service's own, other tools')


def as_paletai_settings(settings: Sequence[AppSetting]) -> Settings:
    """The values alone, read as PaletAI reads them; ValidationError when it would refuse them."""
    values = {s.name: s.value for s in settings}
    return _ValuesOnlySettings(_env_file=None, **values)  # type: ignore[arg-type]


def validate_settings(settings: Sequence[AppSetting]) -> Validation:
    """What PaletAI's Settings say about these values: bad values, then start-up problems."""
    values = {s.name: s.value for s in settings}
    known = set(Settings.model_fields)
    unknown = sorted(name for name in values if name not in known)
    try:
        parsed = _ValuesOnlySettings(_env_file=None, **values)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = format_validation_error(exc).replace(": Value error, ", ": ").splitlines()
        return Validation(lines, unknown)
    return Validation(parsed.problems(), unknown)


# ---------------------------------------------------------------------------------------------
# Diff


@dataclass
class SettingsDiff:
    added: list[AppSetting]
    removed: list[AppSetting]
    changed: list[tuple[AppSetting, AppSetting]]
    same: int

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def as_dict(self) -> dict[str, Any]:
        """For the report: names, and values only where they are not secrets."""

        def change(old: AppSetting, new: AppSetting) -> dict[str, Any]:
            entry: dict[str, Any] = {"name": new.name, "secret": old.secret or new.secret}
            if not entry["secret"]:
                entry.update(old=old.value, new=new.value)
            if old.slot_setting != new.slot_setting:
                entry["slotSetting"] = [old.slot_setting, new.slot_setting]
            return entry

        return {
            "added": [{"name": s.name, "value": s.shown} for s in self.added],
            "removed": [{"name": s.name, "value": s.shown} for s in self.removed],
            "changed": [change(o, n) for o, n in self.changed],
            "unchanged": self.same,
        }


def diff_settings(old: Sequence[AppSetting], new: Sequence[AppSetting]) -> SettingsDiff:
    before = {s.name: s for s in old}
    after = {s.name: s for s in new}
    changed = [
        (before[n], after[n]) for n in sorted(before.keys() & after.keys()) if before[n] != after[n]
    ]
    return SettingsDiff(
        added=[after[n] for n in sorted(after.keys() - before.keys())],
        removed=[before[n] for n in sorted(before.keys() - after.keys())],
        changed=changed,
        same=len(before.keys() & after.keys()) - len(changed),
    )


# ---------------------------------------------------------------------------------------------
# Apply through the az CLI (ops/azure/az.py AzCli: the one way the kit runs az)


@dataclass
class AzResult:
    argv: list[str]
    names_set: list[str]


def az_set_args(app: str, resource_group: str, settings_file: str, slot: str | None) -> list[str]:
    """`webapp config appsettings set ...` for AzCli (which adds `--output json`)."""
    args = [
        "webapp",
        "config",
        "appsettings",
        "set",
        "--name",
        app,
        "--resource-group",
        resource_group,
        "--settings",
        f"@{settings_file}",
    ]
    if slot:
        args += ["--slot", slot]
    return args


def apply_settings(
    az: AzCli,
    settings: Sequence[AppSetting],
    app: str,
    resource_group: str,
    slot: str | None = None,
) -> AzResult:
    """`az webapp config appsettings set ... --settings @FILE`: the values only ever travel in a
    0600 file that is deleted afterwards, never on a command line (visible in `ps`). With a dry
    run AzCli prints the line (the file is written and removed all the same) and runs nothing.
    DeployError when az fails."""
    fd, path = tempfile.mkstemp(prefix="paletai-settings-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(dump_settings(settings))
        args = az_set_args(app, resource_group, path, slot)
        answer = az.run(*args)
    finally:
        os.unlink(path)
    names: list[str] = []
    if isinstance(answer, list):
        names = sorted(str(e.get("name")) for e in answer if isinstance(e, dict))
    return AzResult(argv=az.argv(args), names_set=names)
