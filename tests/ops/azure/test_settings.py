"""`paletai settings export|diff|apply` with a fake `az` on PATH that records its calls."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paletai.ops.azure.settings import is_secret, parse_settings, validate_settings
from paletai.ops.azure.settings_cli import settings_app

runner = CliRunner()

SECRETS = {
    "DB_PATH": "mongodb://paletai:s3cret-db-pass@old-host:27017/paletai",
    "OPENAI_API_KEY": "sk-old-openai-secret-value",
    "AZURE_STORAGE_CONNECTION_STRING": (
        "DefaultEndpointsProtocol=https;AccountName=old;AccountKey=c2VjcmV0LWtleQ==;"
    ),
    "JWT_SECRET_KEY": "jwt-secret-" + "j" * 40,
}
PLAIN = {"OPENAI_MODEL": "gpt-4o", "IS_LOCAL_ENV": "False", "WEBSITES_PORT": "8000"}


def az_list(values: dict[str, str], slot: frozenset[str] = frozenset()) -> str:
    """What `az webapp config appsettings list --output json` prints (unsorted, as az does)."""
    rows = [{"name": k, "slotSetting": k in slot, "value": v} for k, v in values.items()]
    return json.dumps(list(reversed(rows)), indent=2)


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old-app-settings.json"
    path.write_text(az_list(SECRETS | PLAIN))
    return path


FAKE_AZ = """#!{python}
import json, os, stat, sys
log = {log!r}
argv = sys.argv[1:]
entry = {{"argv": argv}}
for arg in argv:
    if arg.startswith("@"):
        path = arg[1:]
        entry["file"] = path
        entry["mode"] = oct(stat.S_IMODE(os.stat(path).st_mode))
        entry["content"] = json.load(open(path))
with open(log, "a") as fh:
    fh.write(json.dumps(entry) + "\\n")
if os.environ.get("FAKE_AZ_FAIL"):
    sys.stderr.write("ERROR: (ResourceNotFound) The Resource 'sites/NOPE' was not found.\\n")
    sys.exit(3)
print(json.dumps([{{"name": s["name"], "slotSetting": s["slotSetting"], "value": None}}
                  for s in entry.get("content", [])]))
"""


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `az` first on PATH; returns the log it appends one JSON line per call to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "az-calls.jsonl"
    script = bin_dir / "az"
    script.write_text(FAKE_AZ.format(python=sys.executable, log=str(log)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def no_secret_in(text: str) -> bool:
    return not any(value in text for value in SECRETS.values())


# --- export -----------------------------------------------------------------------------------


def test_export_from_stdin_masks_the_table_but_not_the_file(tmp_path: Path) -> None:
    out, report = tmp_path / "normalised.json", tmp_path / "report.json"
    result = runner.invoke(
        settings_app,
        ["export", "--from", "-", "--out", str(out), "--json", str(report)],
        input=az_list(SECRETS | PLAIN, slot=frozenset({"DB_PATH"})),
    )
    assert result.exit_code == 0, result.output
    assert no_secret_in(result.output)
    assert "gpt-4o" in result.output
    assert "********" in result.output
    written = json.loads(out.read_text())
    assert [s["name"] for s in written] == sorted(SECRETS | PLAIN)
    assert {s["name"]: s["value"] for s in written} == SECRETS | PLAIN
    assert next(s for s in written if s["name"] == "DB_PATH")["slotSetting"] is True
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert no_secret_in(report.read_text())
    assert "WEBSITES_PORT" in result.output  # named as not read by PaletAI


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('"a string"', "got a JSON str"),
        ('[{"value": "x"}]', "entry 0 is not"),
        ('[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]', "A appears twice"),
    ],
)
def test_export_refuses_what_is_not_an_app_settings_list(text: str, message: str) -> None:
    result = runner.invoke(settings_app, ["export", "--from", "-"], input=text)
    assert result.exit_code == 2
    assert message in result.output


def test_secret_names_and_values() -> None:
    for name in ("OPENAI_API_KEY", "JWT_SECRET_KEY", "ADMIN_TOKEN", "DB_PATH", "SMTP_PASSWORD"):
        assert is_secret(name)
    assert is_secret("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountKey=abc")
    assert is_secret("MONGO", "mongodb://u:p@host/db")
    assert not is_secret("OPENAI_MODEL", "gpt-4o")
    assert not is_secret("ONESIGNAL_API_URL", "https://api.onesignal.com")


# --- diff and validation ----------------------------------------------------------------------


def test_diff_lists_changes_and_never_shows_secret_values(old_file: Path, tmp_path: Path) -> None:
    new_values = SECRETS | PLAIN | {"OPENAI_MODEL": "gpt-4.1", "ADMIN_TOKEN": "admin-" + "a" * 20}
    new_values["DB_PATH"] = "mongodb://paletai:n3w-db-pass@new-host:27017/paletai"
    del new_values["WEBSITES_PORT"]
    new_file = tmp_path / "new.json"
    new_file.write_text(az_list(new_values))
    report_path = tmp_path / "diff.json"
    result = runner.invoke(
        settings_app, ["diff", str(old_file), str(new_file), "--json", str(report_path)]
    )
    assert result.exit_code == 0, result.output
    assert no_secret_in(result.output)
    assert "n3w-db-pass" not in result.output
    assert "admin-aaaa" not in result.output
    report = json.loads(report_path.read_text())
    diff = report["diff"]
    assert [a["name"] for a in diff["added"]] == ["ADMIN_TOKEN"]
    assert diff["added"][0]["value"] == "********"
    assert [r["name"] for r in diff["removed"]] == ["WEBSITES_PORT"]
    assert diff["changed"] == [
        {"name": "DB_PATH", "secret": True},
        {"name": "OPENAI_MODEL", "secret": False, "old": "gpt-4o", "new": "gpt-4.1"},
    ]
    assert "n3w-db-pass" not in report_path.read_text()

    strict = runner.invoke(settings_app, ["diff", str(old_file), str(new_file), "--strict"])
    assert strict.exit_code == 1


def test_diff_names_the_setting_paletai_would_refuse(old_file: Path, tmp_path: Path) -> None:
    new_file = tmp_path / "new.json"
    new_file.write_text(az_list(SECRETS | PLAIN | {"IS_LOCAL_ENV": "Flase", "DB_PATH": "old-db"}))
    result = runner.invoke(settings_app, ["diff", str(old_file), str(new_file)])
    assert result.exit_code == 1
    assert "IS_LOCAL_ENV: expected True/False/true/false/1/0, got 'Flase'" in result.output
    assert "DB_PATH: must be a MongoDB URI" in result.output


def test_validation_reads_only_the_files_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # The operator's own shell must not hide or invent a problem.
    monkeypatch.setenv("IS_LOCAL_ENV", "not-a-bool")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-operators-shell")
    settings = parse_settings(json.dumps({"AI_PROVIDER": "openai"}), "test")
    assert validate_settings(settings).problems == [
        "OPENAI_API_KEY: required when AI_PROVIDER=openai"
    ]


# --- apply ------------------------------------------------------------------------------------


def test_apply_calls_az_with_an_at_file_and_no_secret_on_the_command_line(
    old_file: Path, fake_az: Path, tmp_path: Path
) -> None:
    report_path = tmp_path / "apply.json"
    result = runner.invoke(
        settings_app,
        [
            "apply",
            str(old_file),
            "--app",
            "paletai-new",
            "--resource-group",
            "rg-paletai-prod",
            "--json",
            str(report_path),
        ],
    )
    assert result.exit_code == 0, result.output
    [call] = calls(fake_az)
    settings_file = call["file"]
    assert call["argv"] == [
        "webapp",
        "config",
        "appsettings",
        "set",
        "--name",
        "paletai-new",
        "--resource-group",
        "rg-paletai-prod",
        "--settings",
        f"@{settings_file}",
        "--output",
        "json",
    ]
    assert no_secret_in(" ".join(call["argv"]))
    assert call["mode"] == "0o600"
    assert {s["name"]: s["value"] for s in call["content"]} == SECRETS | PLAIN
    assert not Path(settings_file).exists(), "the settings file must be deleted afterwards"
    assert no_secret_in(result.output)
    assert no_secret_in(report_path.read_text())


def test_apply_dry_run_does_not_call_az(old_file: Path, fake_az: Path) -> None:
    result = runner.invoke(
        settings_app, ["apply", str(old_file), "--app", "paletai-new", "-g", "rg", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert calls(fake_az) == []
    [line] = [line for line in result.stdout.splitlines() if line.startswith("az ")]
    assert line.startswith(
        "az webapp config appsettings set --name paletai-new --resource-group rg --settings @"
    )
    assert line.endswith(".json --output json")
    assert no_secret_in(result.output)


def test_apply_dry_run_line_names_the_slot_and_subscription(old_file: Path, fake_az: Path) -> None:
    result = runner.invoke(
        settings_app,
        ["apply", str(old_file), "--app", "a", "-g", "rg", "--slot", "staging"]
        + ["--subscription", "sub-new", "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stdout.splitlines() if line.startswith("az ")]
    assert line.endswith("--slot staging --output json --subscription sub-new")
    assert calls(fake_az) == []


def test_apply_refuses_settings_paletai_would_not_start_with(fake_az: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(az_list({"ENABLE_STREAMING": "maybe"}))
    result = runner.invoke(settings_app, ["apply", str(bad), "--app", "a", "-g", "rg"])
    assert result.exit_code == 1
    assert "ENABLE_STREAMING" in result.output
    assert calls(fake_az) == []
    forced = runner.invoke(settings_app, ["apply", str(bad), "--app", "a", "-g", "rg", "--force"])
    assert forced.exit_code == 1  # applied, but the report still records the problem
    assert len(calls(fake_az)) == 1


def test_apply_reports_az_failures(
    old_file: Path, fake_az: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_AZ_FAIL", "1")
    result = runner.invoke(settings_app, ["apply", str(old_file), "--app", "NOPE", "-g", "rg"])
    assert result.exit_code == 1
    assert "`az webapp config appsettings set` failed (exit 3)" in result.output
    assert "ResourceNotFound" in result.output
    [call] = calls(fake_az)
    assert not Path(call["file"]).exists()


def test_apply_without_az_says_how_to_get_it(
    old_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = runner.invoke(settings_app, ["apply", str(old_file), "--app", "a", "-g", "rg"])
    assert result.exit_code == 1
    assert "error: the `az` command is not on PATH; install the Azure CLI" in result.output


def test_export_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(settings_app, ["export", "--from", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert "No such file or directory" in result.output


def test_diff_shows_a_slot_setting_change(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(az_list(PLAIN))
    new.write_text(az_list(PLAIN, slot=frozenset({"OPENAI_MODEL"})))
    report_path = tmp_path / "diff.json"
    result = runner.invoke(settings_app, ["diff", str(old), str(new), "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    [change] = json.loads(report_path.read_text())["diff"]["changed"]
    assert change["slotSetting"] == [False, True]
    assert "OPENAI_MODEL (slotSetting)" in result.output
