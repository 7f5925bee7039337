"""`paletai migrate rehearse`: the whole migration on this machine, under live traffic."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from paletai.cli import app as paletai_app
from paletai.ops.rehearse import harness as rehearse_module
from paletai.ops.rehearse.cli import default_workdir
from paletai.ops.results import parse_result

runner = CliRunner()


def _app() -> typer.Typer:
    """`paletai migrate`, as the command line wires it."""
    return paletai_app


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running either (it only waits for its parent to read its status).
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_without_azurite_it_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rehearse_module, "find_azurite", lambda: None)
    result = runner.invoke(_app(), ["migrate", "rehearse", "--workdir", str(tmp_path / "rh")])
    assert result.exit_code == 2
    assert "make tools" in " ".join(result.output.split())


def test_without_workdir_and_azurite_nothing_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rehearse_module, "find_azurite", lambda: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PALETAI_DATA_DIR", raising=False)
    result = runner.invoke(_app(), ["migrate", "rehearse"])
    assert result.exit_code == 2
    assert "make tools" in " ".join(result.output.split())
    assert list(tmp_path.iterdir()) == []


def test_the_default_workdir_is_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PALETAI_DATA_DIR", raising=False)
    first = default_workdir()
    assert first.parent == tmp_path / ".paletai" / "rehearsals"  # git-ignored
    assert first.name.startswith("paletai-rehearsal-")
    monkeypatch.setenv("PALETAI_DATA_DIR", str(tmp_path / "data"))
    assert default_workdir().parent == tmp_path / "data" / "rehearsals"
    assert not (tmp_path / ".paletai").exists()
    assert not (tmp_path / "data").exists()


def test_a_non_empty_workdir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = runner.invoke(_app(), ["migrate", "rehearse", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not empty" in " ".join(result.output.split())


@pytest.mark.slow
def test_the_whole_migration_under_live_traffic(tmp_path: Path) -> None:
    if rehearse_module.find_azurite() is None:
        pytest.fail("Azurite is not installed: run `make tools`", pytrace=False)
    workdir = tmp_path / "rehearsal"
    args = ["rehearse", "--workdir", str(workdir), "--users", "5", "--games", "8"]
    result = runner.invoke(_app(), ["migrate", *args, "--traffic-rps", "5", "--seconds", "8"])
    data = json.loads((workdir / "rehearse.json").read_text())
    try:
        assert result.exit_code == 0, result.output
        report = (workdir / "report.md").read_text()
        assert "**Result: all passed:" in report, report
        assert ", 0 failed," in report

        traffic = data["traffic"]
        assert traffic["lost_writes"] == 0, traffic["lost_samples"]
        assert traffic["unexpected_errors"] == 0, traffic["unexpected_samples"]
        assert traffic["refused_outside_pause"] == 0
        assert traffic["pause_window_seconds"] is not None
        assert traffic["acknowledged_games"] + traffic["acknowledged_likes"] > 0
        assert traffic["by_target"]["old"] > 0
        assert traffic["by_target"]["new"] > 0

        for path in workdir.glob("*.json"):  # every result names its command and version
            written = json.loads(path.read_text())
            assert written["schema_version"] == 1, path.name
            assert parse_result(written).command == written["command"]
        assert "Unreadable" not in report

        cutover = json.loads((workdir / "db-cutover.json").read_text())
        assert cutover["identical"] is True
        assert cutover["ready_at"]
        assert cutover["write_pause_seconds"] > 0
        assert "write pause measured by db cutover" in report
        assert json.loads((workdir / "db-verify.json").read_text())["identical"] is True
        copy = json.loads((workdir / "storage-copy.json").read_text())
        assert copy["copy"]["failed"] == 0
        assert copy["rewrite"]["missing"] == 0
        printed = result.output.replace("\n", "")
        assert "report.md" in printed
        assert "all passed" in printed
    finally:
        pids = data["pids"]
        assert set(pids) == {"old database", "new database", "azurite", "old app", "new app"}
        left = {name: pid for name, pid in pids.items() if _alive(pid)}
        assert not left, f"processes left behind: {left}"
