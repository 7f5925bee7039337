"""Every `--json` result is its command's declared model: `command`, `schema_version`, and the
folder it goes in is created. The commands are driven through their real CLIs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from paletai.db.client import make_client
from paletai.db.embedded import free_port
from paletai.ops.azure.settings_cli import settings_app
from paletai.ops.checks import dns as migrate_dns
from paletai.ops.checks import names
from paletai.ops.checks.cli import migrate_app
from paletai.ops.checks.phase4 import Check, CheckReport
from paletai.ops.cli import finish_checks
from paletai.ops.db.cli import db_app
from paletai.ops.results import MODELS, SCHEMA_VERSION, DbBackupResult, parse_result
from tests.ops.conftest import game_doc, with_db

runner = CliRunner()


def read_result(path: Path, command: str) -> dict[str, Any]:
    """The file's JSON, after checking it names `command`, version 1, and fits its model."""
    assert path.exists(), f"{path} was not written"
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["command"] == command
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert type(parse_result(data)) is MODELS[command]
    return data


def seed(uri: str, name: str, games: int) -> None:
    async def insert() -> None:
        client = make_client(uri)
        try:
            await client[name].games.insert_many([game_doc(i) for i in range(games)])
        finally:
            await client.close()

    asyncio.run(insert())


def test_every_model_names_its_command_and_version() -> None:
    assert set(MODELS) >= {
        "db backup",
        "db restore",
        "db verify",
        "db sync",
        "db cutover",
        "storage copy",
        "settings export",
        "settings diff",
        "settings apply",
        "migrate check",
        "migrate dns",
        "migrate load",
        "migrate rehearse",
    }
    for command, model in MODELS.items():
        assert model.model_fields["command"].default == command
        assert model.model_fields["schema_version"].default == 1


def test_another_schema_version_or_an_undeclared_field_is_refused() -> None:
    good = DbBackupResult(database="paletai", directory="dump").model_dump(mode="json")
    assert parse_result(good).command == "db backup"
    with pytest.raises(ValueError, match="schema_version 2"):
        parse_result({**good, "schema_version": 2})
    with pytest.raises(ValueError, match="surprise"):
        parse_result({**good, "surprise": 1})


def test_db_commands_write_their_declared_json_into_missing_folders(
    mongo_uri: str, second_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    seed(mongo_uri, fresh_name, 20)
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    results = tmp_path / "results" / "day1"  # does not exist yet
    dump = tmp_path / "dump"

    res = runner.invoke(
        db_app, ["backup", "--uri", src, "--out", str(dump), "--json", f"{results}/backup.json"]
    )
    assert res.exit_code == 0, res.output
    backup = read_result(results / "backup.json", "db backup")
    assert backup["documents"] == 20

    res = runner.invoke(
        db_app, ["restore", "--uri", dst, "--dir", str(dump), "--json", f"{results}/restore.json"]
    )
    assert res.exit_code == 0, res.output
    assert read_result(results / "restore.json", "db restore")["ok"] is True

    res = runner.invoke(
        db_app,
        ["verify", "--source", src, "--target", dst, "--json", f"{results}/sub/verify.json"],
    )
    assert res.exit_code == 0, res.output
    assert read_result(results / "sub" / "verify.json", "db verify")["identical"] is True

    res = runner.invoke(
        db_app,
        [
            "sync",
            "--source",
            src,
            "--target",
            dst,
            "--force",
            "--until-synced",
            "--timeout",
            "120",
            "--json",
            f"{results}/sync.json",
        ],
    )
    assert res.exit_code == 0, res.output
    sync = read_result(results / "sync.json", "db sync")
    assert sync["caught_up"] is True
    assert sync["collections"]["games"]["copy_total"] == 20


def test_a_json_path_that_cannot_be_written_fails_with_one_line(
    mongo_uri: str, fresh_name: str, tmp_path: Path
) -> None:
    seed(mongo_uri, fresh_name, 1)
    blocker = tmp_path / "results"
    blocker.write_text("a file where the folder should be")
    res = runner.invoke(
        db_app,
        [
            "backup",
            "--uri",
            with_db(mongo_uri, fresh_name),
            "--out",
            str(tmp_path / "dump"),
            "--json",
            str(blocker / "backup.json"),
        ],
    )
    assert res.exit_code == 2, res.output
    assert "cannot write" in res.output
    assert "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)


@pytest.fixture
def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_check_commands_write_json_into_a_missing_folder_when_nothing_answers(
    closed_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No CNAME query: it would leave the machine (see tests/ops/checks/test_dns.py).
    monkeypatch.setattr(migrate_dns, "cname_chain", lambda host, nameserver: ([host], None))
    results = tmp_path / "not" / "yet"
    port = closed_url.rsplit(":", 1)[1]
    for args, command in (
        (["check", closed_url, "--timeout", "1"], "migrate check"),
        (["load", closed_url, "--games", "1", "--requests", "1"], "migrate load"),
        (
            ["dns", "localhost", "--expect", "localhost", "--insecure-http", "--port", port],
            "migrate dns",
        ),
    ):
        out = results / f"{command.replace(' ', '-')}.json"
        res = runner.invoke(migrate_app, [*args, "--json", str(out)])
        assert res.exit_code == 1, res.output
        data = read_result(out, command)
        assert data["ok"] is False
        assert data["checks"], data


def test_settings_commands_write_their_declared_json(tmp_path: Path) -> None:
    rows = [
        {"name": "DB_PATH", "value": "mongodb://u:p@db.example.net/paletai", "slotSetting": False},
        {"name": "AI_PROVIDER", "value": "offline", "slotSetting": False},
    ]
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(rows))
    new.write_text(json.dumps([*rows[:1], {**rows[1], "value": "anthropic"}]))
    results = tmp_path / "results"
    for args, command in (
        (["export", "--from", str(old)], "settings export"),
        (["diff", str(old), str(new)], "settings diff"),
        (["apply", str(old), "--app", "new-app", "-g", "rg", "--dry-run"], "settings apply"),
    ):
        out = results / f"{command.replace(' ', '-')}.json"
        runner.invoke(settings_app, [*args, "--json", str(out)])
        data = read_result(out, command)
        assert "mongodb://u:p@" not in out.read_text()  # secrets stay masked
        assert data["checks"], data


def test_a_value_its_model_cannot_hold_ends_the_command_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = CheckReport("migrate check", "http://127.0.0.1:1")
    report.add(Check(names.HEALTH, True, 0.01, "healthy"))
    report.extra["version"] = {"major": 1}  # a server's odd /health answer
    out = tmp_path / "check.json"
    with pytest.raises(typer.Exit) as exit_info:
        finish_checks(report, out)
    assert exit_info.value.exit_code == 1
    err = capsys.readouterr().err
    assert "migrate check: cannot write --json: version" in err
    assert "Traceback" not in err
    assert not out.exists()
