"""`paletai migrate insights` and `paletai migrate logs` against the fake az (each command of az
answered as az would), and AzCli's bounded stream against a command that never ends."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paletai.cli import app
from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.checks import names
from tests.fixtures.fake_az import FakeAz
from tests.ops.azure.answers import (
    APP,
    APP_ID,
    APP_NOT_FOUND,
    GROUP,
    NOT_LOGGED_IN,
    SECRETS,
    window_answer,
    with_app,
)
from tests.ops.test_results import read_result

runner = CliRunner()


def insights(tmp_path: Path, *extra: str) -> tuple[Any, dict[str, Any] | None]:
    out = tmp_path / "results" / "insights.json"
    args = ["migrate", "insights", "--app", APP, "-g", GROUP, "--json", str(out), *extra]
    result = runner.invoke(app, args)
    data = read_result(out, "migrate insights") if out.exists() else None
    return result, data


def checks_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in data["checks"]}


RESPONSE = f"{names.INSIGHTS_RESPONSE_TIME}2 s"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_insights_healthy_app_passes(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond("rest", window_answer(1200, failed=3, avg_ms=180.5, p95_ms=640.0))
    result, data = insights(tmp_path, "--minutes", "15")
    assert result.exit_code == 0, result.output
    assert data is not None
    assert data["ok"] is True
    checks = checks_of(data)
    assert list(checks) == [
        names.INSIGHTS_COMPONENT,
        names.INSIGHTS_REQUESTS,
        names.INSIGHTS_NO_ERRORS,
        RESPONSE,
    ]
    assert "paletai-ai" in checks[names.INSIGHTS_COMPONENT]["detail"]
    assert "1,200 requests in the last 15 min" in checks[names.INSIGHTS_REQUESTS]["detail"]
    assert "p95 640 ms" in checks[RESPONSE]["detail"]
    assert data["figures"]["failure_rate"] == 0.0025
    assert data["insights"] == {
        "name": "paletai-ai",
        "id": data["insights"]["id"],
        "app_id": APP_ID,
    }
    # One Kusto query through `az rest` to the Application Insights API, over 15 minutes.
    [rest] = fake_az.calls_of("rest")
    assert (
        rest[rest.index("--url") + 1]
        == f"https://api.applicationinsights.io/v1/apps/{APP_ID}/query"
    )
    assert rest[rest.index("--resource") + 1] == "https://api.applicationinsights.io"
    body = json.loads(rest[rest.index("--body") + 1])
    assert body["timespan"] == "PT15M"
    assert "let window = 15m;" in body["query"]
    assert "percentile(duration, 95)" in body["query"]
    assert_no_secret(result.output, json.dumps(data))


def test_insights_errors_and_exceptions_fail_with_the_most_frequent(
    fake_az: FakeAz, tmp_path: Path
) -> None:
    with_app(fake_az)
    problems = [
        "7 x exception pymongo.errors.ServerSelectionTimeoutError: "
        f"mongodb://paletai:{SECRETS[0]}@db.example.net:27017 timed out",
        "4 x HTTP 503 GET /games/feed",
    ]
    fake_az.respond(
        "rest", window_answer(900, failed=11, server_errors=4, exceptions=7, problems=problems)
    )
    result, data = insights(tmp_path)
    assert result.exit_code == 1, result.output
    assert data is not None
    assert data["ok"] is False
    checks = checks_of(data)
    assert checks[names.INSIGHTS_REQUESTS]["ok"] is True
    assert checks[RESPONSE]["ok"] is True
    bad = checks[names.INSIGHTS_NO_ERRORS]
    assert bad["ok"] is False
    assert "4 responses 5xx, 7 exceptions" in bad["detail"]
    assert (
        "most frequent: 7 x exception pymongo.errors.ServerSelectionTimeoutError" in bad["detail"]
    )
    assert len(data["figures"]["top_problems"]) == 2
    assert_no_secret(result.output, json.dumps(data))


def test_insights_slow_p95_fails_the_response_time(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond("rest", window_answer(500, failed=0, avg_ms=950.0, p95_ms=3400.0))
    result, data = insights(tmp_path)
    assert result.exit_code == 1, result.output
    assert data is not None
    checks = checks_of(data)
    assert checks[RESPONSE]["ok"] is False
    assert "p95 3,400 ms, average 950 ms over 500 requests" in checks[RESPONSE]["detail"]
    assert checks[names.INSIGHTS_NO_ERRORS]["ok"] is True
    assert f"FAILED migrate insights {APP} ({GROUP}): 1 of 4 checks failed" in result.output


def test_insights_no_traffic_is_not_a_pass(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond("rest", window_answer(0, failed=0, avg_ms=None, p95_ms=None))
    result, data = insights(tmp_path)
    assert result.exit_code == 1
    assert data is not None
    checks = checks_of(data)
    assert checks[names.INSIGHTS_REQUESTS]["ok"] is False
    assert checks[RESPONSE]["ok"] is False
    assert "no request in the last 30 min to time" in checks[RESPONSE]["detail"]


def test_insights_missing_is_one_failed_check(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az, insights=False)
    result, data = insights(tmp_path)
    assert result.exit_code == 1, result.output
    assert data is not None
    assert data["ok"] is False
    [check] = data["checks"]
    assert check["name"] == names.INSIGHTS_COMPONENT
    assert "no APPLICATIONINSIGHTS_CONNECTION_STRING" in check["detail"]
    assert "not set up" in check["detail"]
    assert fake_az.calls_of("rest") == []


def test_insights_component_in_another_group(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond("resource list", [])  # the app's group has none
    result, data = insights(tmp_path)
    assert result.exit_code == 1
    assert data is not None
    assert "--insights-group" in data["checks"][0]["detail"]
    with_app(fake_az)
    fake_az.respond("rest", window_answer())
    result, data = insights(tmp_path, "--insights-group", "monitoring")
    assert result.exit_code == 0, result.output
    listed = fake_az.calls_of("resource list")[-1]
    assert listed[listed.index("--resource-group") + 1] == "monitoring"


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (NOT_LOGGED_IN, "not logged in to Azure; run `az login`"),
        (APP_NOT_FOUND, "under resource group 'huddleup' was not found; check --app and"),
    ],
)
@pytest.mark.parametrize("command", ["insights", "logs"])
def test_az_failures_are_one_line_and_exit_2(
    fake_az: FakeAz, tmp_path: Path, stderr: str, expected: str, command: str
) -> None:
    fake_az.respond("webapp config appsettings list", exit_code=1, stderr=stderr)
    fake_az.respond("webapp log tail", exit_code=1, stderr=stderr)
    result = runner.invoke(
        app,
        [
            "migrate",
            command,
            "--app",
            "nope",
            "-g",
            GROUP,
            "--seconds" if command == "logs" else "--minutes",
            "5",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: `az ")
    assert expected in line


def test_a_query_the_api_refuses_is_a_failed_check(fake_az: FakeAz, tmp_path: Path) -> None:
    with_app(fake_az)
    fake_az.respond(
        "rest",
        exit_code=1,
        stderr='ERROR: Forbidden({"error":{"message":"The provided credentials have insufficient '
        'access to perform the requested operation","code":"InsufficientAccessError"}})',
    )
    result, data = insights(tmp_path)
    assert result.exit_code == 1
    assert data is not None
    failed = data["checks"][-1]
    assert failed["name"] == "insights: query"
    assert "InsufficientAccessError" in failed["detail"]


# ---------------------------------------------------------------------------------------------
# migrate logs

HEALTHY_LOG = """\
2026-12-01T10:00:00  Welcome, you are now connected to log-streaming service.
2026-12-01T10:00:01  [INFO] 169.254.1.1 - "GET /health HTTP/1.1" 200
2026-12-01T10:00:02  [INFO] 169.254.1.1 - "GET /games/feed HTTP/1.1" 200
2026-12-01T10:00:03  [INFO] paletai.jobs: task 6750 succeeded (game 6751)
2026-12-01T10:01:03  No new trace in the past 1 min(s).
"""

BAD_LOG = f"""\
2026-12-01T10:00:01  [INFO] 169.254.1.1 - "GET /health HTTP/1.1" 503
2026-12-01T10:00:02  [ERROR] paletai.db: pymongo.errors.ServerSelectionTimeoutError: \
mongodb://paletai:{SECRETS[0]}@db.example.net:27017 timed out
2026-12-01T10:00:03  Traceback (most recent call last):
2026-12-01T10:00:03    File "/app/paletai/games/router.py", line 40, in feed
2026-12-01T10:00:04  [WARNING] paletai.health: {{"error": {{"code": "database_unavailable"}}}}
2026-12-01T10:00:05  [Errno 111] Connection refused
"""


def logs(tmp_path: Path) -> tuple[Any, dict[str, Any] | None]:
    out = tmp_path / "logs.json"
    args = ["migrate", "logs", "--app", APP, "-g", GROUP, "--seconds", "5", "--json", str(out)]
    result = runner.invoke(app, args)
    return result, read_result(out, "migrate logs") if out.exists() else None


def test_logs_of_a_healthy_app_pass(fake_az: FakeAz, tmp_path: Path) -> None:
    fake_az.respond("webapp log tail", HEALTHY_LOG, raw=True)
    result, data = logs(tmp_path)
    assert result.exit_code == 0, result.output
    assert data is not None
    assert data["ok"] is True
    assert (data["lines"], data["activity_lines"], data["error_lines"]) == (5, 3, 0)
    assert checks_of(data)[names.LOGS_ACTIVITY]["detail"].startswith("3 lines from the app")
    [tail] = fake_az.calls_of("webapp log tail")
    assert tail[tail.index("--name") + 1] == APP
    assert tail[tail.index("--resource-group") + 1] == GROUP


def test_logs_with_errors_fail_and_show_them_masked(fake_az: FakeAz, tmp_path: Path) -> None:
    fake_az.respond("webapp log tail", BAD_LOG, raw=True)
    result, data = logs(tmp_path)
    assert result.exit_code == 1, result.output
    assert data is not None
    assert data["ok"] is False
    assert data["error_lines"] == 1
    assert data["tracebacks"] == 1
    assert data["database_failures"] == 3  # the timeout, database_unavailable, refused
    checks = checks_of(data)
    assert checks[names.LOGS_ACTIVITY]["ok"] is True
    assert checks[names.LOGS_NO_ERRORS]["ok"] is False
    assert checks[names.LOGS_DATABASE]["ok"] is False
    assert "ServerSelectionTimeoutError" in checks[names.LOGS_DATABASE]["detail"]
    assert len(data["samples"]) == 4
    assert "mongodb://****@db.example.net" in data["samples"][0]
    assert_no_secret(result.output, json.dumps(data))


def test_logs_with_nothing_from_the_app_fail(fake_az: FakeAz, tmp_path: Path) -> None:
    quiet = "2026-12-01T10:00:00  Welcome, you are now connected to log-streaming service.\n"
    fake_az.respond("webapp log tail", quiet, raw=True)
    result, data = logs(tmp_path)
    assert result.exit_code == 1
    assert data is not None
    activity = checks_of(data)[names.LOGS_ACTIVITY]
    assert activity["ok"] is False
    assert "az webapp log config --name emailgeniebackend" in activity["detail"]


FOREVER = """\
#!{python}
import sys, time
for i in range(3):
    print(f"line {{i}} secret-value-1", flush=True)
time.sleep(600)
"""


def test_stream_stops_a_command_that_never_ends(tmp_path: Path) -> None:
    script = tmp_path / "az"
    script.write_text(FOREVER.format(python=sys.executable))
    script.chmod(0o755)
    az = AzCli(str(script), redact=("secret-value-1",))
    lines = az.stream("webapp", "log", "tail", "--name", "a", seconds=2.0)
    assert lines == ["line 0 ***", "line 1 ***", "line 2 ***"]


def test_stream_of_a_failing_command_raises(tmp_path: Path) -> None:
    script = tmp_path / "az"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stderr.write('ERROR: nope\\n')\nsys.exit(3)\n"
    )
    script.chmod(0o755)
    with pytest.raises(DeployError, match=r"`az webapp log tail` failed \(exit 3\):\nERROR: nope"):
        AzCli(str(script)).stream("webapp", "log", "tail", seconds=30.0)


def test_stream_in_a_dry_run_prints_the_line() -> None:
    shown: list[str] = []
    az = AzCli("az", dry_run=True, echo=shown.append)
    assert az.stream("webapp", "log", "tail", "--name", "a", seconds=1.0) is None
    assert shown == ["az webapp log tail --name a --output json"]
