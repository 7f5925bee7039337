"""`migrate report` on what `migrate inventory`, `migrate insights` and `migrate logs` wrote
(run against the fake az): Old Environment Documentation and Phase 6's Application Insights and
Log Streaming items."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from paletai.cli import app
from paletai.ops.report.checklist import build_report
from tests.fixtures.fake_az import FakeAz
from tests.ops.azure.answers import APP, GROUP, SECRETS, query_answer, window_answer, with_app
from tests.ops.azure.test_monitor import BAD_LOG, HEALTHY_LOG

runner = CliRunner()


def _run(*args: str) -> int:
    return runner.invoke(app, ["migrate", *args, "--app", APP, "-g", GROUP]).exit_code


def _line(markdown: str, text: str) -> str:
    lines = [line for line in markdown.splitlines() if text in line]
    assert lines, f"no line with {text!r} in:\n{markdown}"
    return lines[0]


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_the_measured_items_pass(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond("rest", query_answer(["day", "requests", "failed"], [["2026-11-27", 700, 7]]))
    assert _run("inventory", "--json", str(tmp_path / "inventory.json")) == 0
    fake_az.respond("rest", window_answer(1200, p95_ms=640.0))
    assert _run("insights", "--json", str(tmp_path / "insights.json")) == 0
    fake_az.respond("webapp log tail", HEALTHY_LOG, raw=True)
    assert _run("logs", "--seconds", "5", "--json", str(tmp_path / "logs.json")) == 0

    markdown = build_report(tmp_path).markdown()
    documentation = _section(markdown, "Pre-Migration: Old Environment Documentation")
    assert _line(documentation, "Exported current app settings to file").startswith(
        "- [x] Exported current app settings to file — 10 settings (5 secret, masked)"
    )
    assert "api.paletai.com (SniEnabled" in _line(documentation, "Documented custom domains")
    assert "B1 (Basic)" in _line(documentation, "Noted current SKU/tier")
    assert "100 requests/day over 7 days" in _line(documentation, "average daily traffic")
    integrations = _line(documentation, "Listed any third-party integrations")
    assert "MongoDB: cluster0.abcde.mongodb.net" in integrations
    assert all(line.startswith("- [x]") for line in documentation.strip().splitlines())

    phase6 = _section(markdown, "Phase 6: Monitoring & Verification (Application Insights")
    for text, evidence in (
        ("Live Metrics shows active requests", "1,200 requests in the last 30 min"),
        ("No errors or exceptions appearing", "0 responses 5xx, 0 exceptions"),
        ("Response times acceptable (<2 seconds, p95)", "p95 640 ms"),
        ("Started log stream", "az webapp log tail on emailgeniebackend"),
        ("Logs show normal activity", "3 lines from the app"),
        ("No error messages", "0 ERROR lines, 0 tracebacks"),
        ("Database connections successful", "no database connection failure"),
    ):
        line = _line(phase6, text)
        assert line.startswith("- [x]"), line
        assert evidence in line, line
    assert _line(markdown, "No errors in Application Insights").startswith("- [x]")
    for secret in SECRETS:
        assert secret not in markdown


def test_errors_fail_their_items_and_missing_results_are_not_measured(
    fake_az: FakeAz, tmp_path: Path
) -> None:
    with_app(fake_az)
    fake_az.respond("rest", window_answer(300, server_errors=2, exceptions=5, p95_ms=2500.0))
    assert _run("insights", "--json", str(tmp_path / "insights.json")) == 1
    fake_az.respond("webapp log tail", BAD_LOG, raw=True)
    assert _run("logs", "--seconds", "5", "--json", str(tmp_path / "logs.json")) == 1

    report = build_report(tmp_path)
    markdown = report.markdown()
    assert _line(markdown, "Live Metrics shows active requests").startswith("- [x]")
    assert _line(markdown, "No errors or exceptions appearing").startswith("- [!]")
    assert _line(markdown, "Response times acceptable (<2 seconds, p95)").startswith("- [!]")
    assert _line(markdown, "No errors in Application Insights").startswith("- [!]")
    assert _line(markdown, "No error messages").startswith("- [!]")
    assert _line(markdown, "Database connections successful").startswith("- [!]")
    assert _line(markdown, "Logs show normal activity").startswith("- [x]")
    # No inventory: its items are not measured, never passed.
    for text in ("Noted current SKU/tier", "Recorded average daily traffic/metrics"):
        line = _line(markdown, text)
        assert line.startswith("- [ ]"), line
        assert "no `migrate inventory` result" in line
    assert not report.ok
    assert SECRETS[0] not in markdown


def test_no_application_insights_fails_the_found_item_only(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az, insights=False)
    assert _run("insights", "--json", str(tmp_path / "insights.json")) == 1
    markdown = build_report(tmp_path).markdown()
    assert _line(markdown, "Application Insights found for the app").startswith("- [!]")
    line = _line(markdown, "Live Metrics shows active requests")
    assert line.startswith("- [ ]")
    assert "`migrate insights` did not run this check" in line
