"""`paletai migrate load` (Phase 6) against real `paletai serve` processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from paletai.ops.checks.cli import migrate_app
from paletai.ops.checks.load import EndpointStats, percentile
from tests.process_helpers import ServerProcess

runner = CliRunner()


def run_load(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "load.json"
    result = runner.invoke(migrate_app, ["load", *args, "--json", str(out)])
    report = json.loads(out.read_text()) if out.exists() else {}
    return result.exit_code, result.output, report


def test_load_creates_games_reads_within_bounds_and_cleans_up(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_load(
        tmp_path,
        paletai_server.base_url,
        "--games",
        "3",
        "--concurrency",
        "4",
        "--requests",
        "60",
        "--timeout",
        "30",
    )
    assert code == 0, output
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "health",
        "games: create 3",
        "games: generation",
        "games: images",
        "load: feed",
        "load: game",
        "load: health",
        "load: all requests done",
        "load: average response time < 2 s",
        "cleanup: delete the test games",
    ]
    assert all(c["ok"] for c in report["checks"])
    games = report["games"]
    assert len(games) == 3
    assert all(g["status"] == "succeeded" and g["image"].startswith("PNG") for g in games)

    load = report["load"]
    assert load["requests"] == 60  # exactly what was asked, no more
    endpoints = load["endpoints"]
    assert sum(e["requests"] for e in endpoints.values()) == 60
    assert {name: e["errors"] for name, e in endpoints.items()} == {
        "feed": 0,
        "game": 0,
        "health": 0,
    }
    for figures in endpoints.values():
        assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert "req/s" in output
    assert "PASSED migrate load" in output
    # The test games are gone.
    for game in games:
        response = httpx.get(f"{paletai_server.base_url}/games/{game['game_id']}")
        assert response.status_code == 404


def test_load_fails_when_generation_fails_and_reports_each_error(
    failing_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_load(
        tmp_path, failing_server.base_url, "--games", "2", "--requests", "10", "--timeout", "30"
    )
    assert code == 1, output
    generation = next(c for c in report["checks"] if c["name"] == "games: generation")
    assert not generation["ok"]
    assert generation["detail"].startswith("0/2 succeeded")
    assert generation["detail"].count("could not reach the AI provider") == 2
    images = next(c for c in report["checks"] if c["name"] == "games: images")
    assert not images["ok"]
    # The reads still ran (feed and health; there is no game to read).
    assert report["load"]["requests"] == 10
    assert set(report["load"]["endpoints"]) == {"feed", "health"}
    assert "FAILED migrate load" in output


def test_load_spreads_games_over_accounts_within_the_daily_limit(
    slow_server: ServerProcess, tmp_path: Path
) -> None:
    # DAILY_PROMPT_LIMIT=2 there: 3 games need 2 test accounts, and no request is a 429.
    code, output, report = run_load(
        tmp_path, slow_server.base_url, "--games", "3", "--requests", "6", "--timeout", "30"
    )
    assert code == 0, output
    create = report["checks"][1]
    assert create["detail"] == "3 tasks queued by 2 test account(s)"
    assert [g["status"] for g in report["games"]] == ["succeeded"] * 3


def test_load_where_nothing_listens_says_cannot_reach(closed_url: str, tmp_path: Path) -> None:
    code, output, report = run_load(tmp_path, closed_url, "--games", "1", "--requests", "5")
    assert code == 1
    assert "cannot reach" in output
    assert [c["name"] for c in report["checks"]] == ["health"]
    assert "load" not in report  # no load was sent to a dead address


def test_load_refuses_unbounded_numbers() -> None:
    result = runner.invoke(migrate_app, ["load", "http://127.0.0.1:9", "--games", "500"])
    assert result.exit_code == 2


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) == 0.0


def test_endpoint_stats_keep_a_few_error_samples() -> None:
    stats = EndpointStats("feed")
    for i in range(5):
        stats.record(0.1, f"500: boom {i}")
    stats.record(0.3, None)
    summary = stats.summary(wall_seconds=2.0)
    assert summary["requests"] == 6
    assert summary["errors"] == 5
    assert summary["error_samples"] == ["500: boom 0", "500: boom 1", "500: boom 2"]
    assert summary["requests_per_second"] == 3.0
