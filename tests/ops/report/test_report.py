"""`paletai migrate report` on hand-written results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from paletai.cli import app as paletai_app
from paletai.ops.report.checklist import build_report, classify, mask_secrets
from paletai.ops.results import (
    CountedCollection,
    DbCutoverResult,
    DbVerifyResult,
    MigrateCheckResult,
    StorageCopyResult,
    dump_result,
)
from tests.ops.report import fixtures

runner = CliRunner()


def _app() -> typer.Typer:
    """`paletai migrate`, as the command line wires it."""
    return paletai_app


def _run(directory: Path, *extra: str) -> tuple[int, str, str]:
    out = directory / "report.md"
    result = runner.invoke(
        _app(), ["migrate", "report", "--dir", str(directory), "--out", str(out), *extra]
    )
    return result.exit_code, result.output, out.read_text() if out.exists() else ""


def _line(markdown: str, text: str) -> str:
    lines = [line for line in markdown.splitlines() if text in line]
    assert lines, f"no line with {text!r} in:\n{markdown}"
    return lines[0]


def test_every_kind_is_recognised_by_its_command() -> None:
    kinds = {name: classify(dump_result(data)) for name, data in fixtures.ALL.items()}
    assert kinds == {
        "settings-diff.json": "settings",
        "db-sync.json": "sync",
        "db-cutover.json": "cutover",
        "db-verify.json": "verify",
        "storage-copy.json": "storage",
        "migrate-check.json": "check",
        "migrate-dns.json": "dns",
        "migrate-load.json": "load",
    }
    assert classify({"something": "else"}) is None
    assert classify([1, 2]) is None


def test_all_passed_with_the_measured_evidence(tmp_path: Path) -> None:
    directory = fixtures.write(tmp_path / "results", fixtures.all_results())
    code, output, markdown = _run(directory, "--title", "Migration of 24 November")
    assert code == 0, output
    assert markdown.startswith("# Migration of 24 November")
    assert "**Result: all passed:" in markdown
    assert ", 0 failed," in markdown
    assert "- [!]" not in markdown
    health = _line(markdown, "Health endpoint: 200 OK")
    assert health.startswith("- [x]")
    assert "0.03 s" in health
    verified = _line(markdown, "Verified data in new database")
    assert "users 1,000 = 1,000" in verified
    assert "games 10,000 = 10,000" in verified
    assert "0 documents differ" in verified
    downtime = _line(markdown, "Total Downtime")
    assert downtime.startswith("- [x]")
    assert "0.39 minutes (write pause measured by db cutover: 23.1 s)" in downtime
    response = _line(markdown, "Response times < 2 seconds average")
    assert response.startswith("- [x]")
    assert "11 ms over 200 requests" in response
    assert _line(markdown, "Images copied").startswith("- [x]")
    assert "10,000 image URLs rewritten" in markdown
    assert _line(markdown, "the record points at the new app").startswith("- [x]")
    # Phases appear in the checklist's order, Success Criteria and Sign-Off last.
    titles = re.findall(r"^## (.+)$", markdown, flags=re.M)
    assert titles[0].startswith("Pre-Migration")
    assert titles[-2:] == ["Success Criteria", "Sign-Off"]
    assert titles.index("Phase 4: Configuration Verification") < titles.index(
        "Phase 5: DNS Cutover"
    )
    # What no command measures is never ticked.
    assert _line(markdown, "No errors in Application Insights").startswith("- [ ]")
    assert _line(markdown, "Cost is within expected range").startswith("- [ ]")
    assert "all passed" in output


def test_a_failed_verify_fails_the_report(tmp_path: Path) -> None:
    results = fixtures.all_results()
    verify = results["db-verify.json"]
    assert isinstance(verify, DbVerifyResult)
    verify.collections[0] = fixtures._coll("games", 10000, missing=3)
    verify.identical = False
    directory = fixtures.write(tmp_path / "results", results)
    code, output, markdown = _run(directory)
    assert code == 1
    line = _line(markdown, "Verified data in new database")
    assert line.startswith("- [!]")
    assert "games 10,000 ≠ 9,997" in line
    assert "3 documents differ" in line
    assert "**Result: 1 failed:" in markdown
    assert "1 failed" in output
    printed = " ".join(output.split())  # the failed item is named, not only counted
    assert "[!] Verified data in new database" in printed
    assert "3 documents differ" in printed


def test_missing_results_are_not_measured_never_passed(tmp_path: Path) -> None:
    only = {"migrate-check.json": fixtures.all_results()["migrate-check.json"]}
    directory = fixtures.write(tmp_path / "results", only)
    (directory / "notes.json").write_text(json.dumps({"unrelated": True}))
    (directory / "broken.json").write_text("{not json")
    code, _, markdown = _run(directory)
    assert code == 0  # nothing failed; what is missing is said, not claimed
    for text, why in (
        ("Set up MongoDB replication/sync", "no `db sync` result"),
        ("Verified data in new database", "no `db verify` or `db cutover` result"),
        ("Images copied to the new storage account", "no `storage copy` result"),
        ("Tested with nslookup", "no `migrate dns` result"),
        ("Response times < 2 seconds average", "no `migrate load` result"),
        ("Total Downtime", "no `db cutover` result"),
    ):
        line = _line(markdown, text)
        assert line.startswith("- [ ]"), line
        assert why in line
    assert _line(markdown, "Health endpoint: 200 OK").startswith("- [x]")
    summary = build_report(directory).summary
    assert summary.startswith("all passed")
    assert "not measured" in summary
    assert "Unreadable (ignored): broken.json" in markdown


def test_an_empty_directory_measures_nothing_and_fails(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir()
    code, _, markdown = _run(directory)
    assert code == 1
    assert "**Result: nothing measured:" in markdown
    assert "- [x]" not in markdown
    assert "- [!]" not in markdown


def test_no_secret_reaches_the_report(tmp_path: Path) -> None:
    results = fixtures.all_results()
    password, key = "s3cr3t-Pa55word", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A="
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEyMzQ1In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    cutover = results["db-cutover.json"]
    assert isinstance(cutover, DbCutoverResult)
    cutover.collections.append(CountedCollection(name="users", source=1000, target=1000))
    check = results["migrate-check.json"]
    assert isinstance(check, MigrateCheckResult)
    check.target = f"mongodb+srv://admin:{password}@cluster0.example.net/paletai"
    check.checks[0].detail = (
        f"healthy; AccountKey={key}; Authorization: Bearer {jwt}; "
        "OPENAI sk-proj-abcdefghijklmnop1234"
    )
    storage = results["storage-copy.json"]
    assert isinstance(storage, StorageCopyResult)
    storage.copy_.destination = (
        "https://newacct.blob.core.windows.net/game-images?sv=2024-01-01&sig=abcDEF123%2Bxyz"
    )
    directory = fixtures.write(tmp_path / "results", results)
    _, output, markdown = _run(directory)
    for secret in (password, key, jwt, "sk-proj-abcdefghijklmnop1234", "abcDEF123"):
        assert secret not in markdown
        assert secret not in output
    assert "mongodb+srv://****@cluster0.example.net" in markdown
    assert "AccountKey=****" in markdown


def test_mask_secrets_leaves_ordinary_text_alone() -> None:
    text = "users 1,000 = 1,000; game 6b05f56fee812c95e742f76c; bearer token; 0.03 s"
    assert mask_secrets(text) == text
    assert mask_secrets("mongodb://u:p@h:27017/db") == "mongodb://****@h:27017/db"


def test_the_rehearsal_traffic_figures(tmp_path: Path) -> None:
    results = fixtures.all_results()
    rehearsal = fixtures.rehearse()
    results["rehearse.json"] = rehearsal
    code, _, markdown = _run(fixtures.write(tmp_path / "ok", results))
    assert code == 0
    assert _line(markdown, "No acknowledged write lost").startswith("- [x]")
    assert "33 games and 55 likes acknowledged" in markdown
    assert "5 writes refused with 503 + Retry-After, all within the pause" in markdown
    assert _line(markdown, "Traffic moved to the new app").startswith("- [x]")
    downtime = _line(markdown, "Total Downtime")
    assert "write pause measured by db cutover: 23.1 s" in downtime
    assert "every live read answered" in downtime

    assert rehearsal.traffic is not None
    rehearsal.traffic.lost_writes = 2
    rehearsal.traffic.refused_outside_pause = 1
    code, _, markdown = _run(fixtures.write(tmp_path / "lost", results))
    assert code == 1
    assert _line(markdown, "No acknowledged write lost").startswith("- [!]")
    assert "2 missing on the new side" in markdown
    assert _line(markdown, "Writes refused only during the pause").startswith("- [!]")
    assert "1 of them outside the pause" in markdown


def test_a_file_with_an_unknown_command_is_unreadable_not_guessed(tmp_path: Path) -> None:
    results = fixtures.all_results()
    del results["db-sync.json"]
    directory = fixtures.write(tmp_path / "results", results)
    sync = dump_result(fixtures.db_sync())
    # Shaped like a sync result, but no command says so: the report must not guess.
    (directory / "old-sync.json").write_text(
        json.dumps({k: v for k, v in sync.items() if k != "command"})
    )
    (directory / "typo.json").write_text(json.dumps({**sync, "command": "db snyc"}))
    (directory / "newer.json").write_text(json.dumps({**sync, "schema_version": 2}))
    (directory / "invalid.json").write_text(json.dumps({**sync, "caught_up": "maybe"}))
    code, _, markdown = _run(directory)
    assert code == 0
    line = _line(markdown, "Set up MongoDB replication/sync")
    assert line.startswith("- [ ]")
    assert "no `db sync` result" in line
    assert 'Unreadable (ignored): old-sync.json: no "command" field' in markdown
    assert 'Unreadable (ignored): typo.json: unknown command "db snyc"' in markdown
    assert "Unreadable (ignored): newer.json: not a valid `db sync` result" in markdown
    assert "schema_version 2" in _line(markdown, "newer.json")
    assert "invalid.json: not a valid `db sync` result: caught_up" in markdown
    assert "db-sync.json" not in markdown
