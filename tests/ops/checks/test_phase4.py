"""`paletai migrate check` (Phase 4) against real `paletai serve` processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from paletai.ops.checks.api import api_error_message
from paletai.ops.checks.cli import migrate_app
from paletai.ops.checks.phase4 import (
    csp_problems,
    health_problems,
    image_location,
    missing_endpoints,
)
from tests.process_helpers import ServerProcess

runner = CliRunner()

PHASE4_CHECKS = [
    "health",
    "docs: Swagger UI",
    "docs: openapi.json endpoints",
    "auth: register",
    "auth: login (JSON)",
    "auth: login (OAuth2 form)",
    "auth: /auth/me",
    "games: create",
    "games: generation",
    "games: the game",
    "image: cover",
    "play: sandboxed HTML",
    "feed: the game is listed",
    "likes: like + unlike",
    "notifications: subscribe",
]


def run_check(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "check.json"
    result = runner.invoke(migrate_app, ["check", *args, "--json", str(out)])
    report = json.loads(out.read_text()) if out.exists() else {}
    return result.exit_code, result.output, report


def test_check_passes_against_a_working_paletai_and_deletes_its_game(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_check(tmp_path, paletai_server.base_url, "--timeout", "30")
    assert code == 0, output
    assert [c["name"] for c in report["checks"]] == [
        *PHASE4_CHECKS,
        "cleanup: delete the test game",
    ]
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert report["ok"] is True
    assert "PASSED migrate check" in output
    assert output.count("PASS ") == len(PHASE4_CHECKS) + 1
    # The stage was shown as it moved, ending in succeeded.
    assert "task succeeded" in output
    assert report["test_email"].startswith("migration-check+")
    assert report["image_location"].startswith("local /static")
    # Cleanup really deleted the game.
    game_id = report["game_id"]
    assert httpx.get(f"{paletai_server.base_url}/games/{game_id}").status_code == 404


def test_check_with_keep_and_an_existing_account_logs_in_and_keeps_the_game(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    email, password = "operator-check@example.com", "operator password 1"
    httpx.post(
        f"{paletai_server.base_url}/auth/register", json={"email": email, "password": password}
    ).raise_for_status()
    code, output, report = run_check(
        tmp_path,
        paletai_server.base_url,
        "--email",
        email,
        "--password",
        password,
        "--prompt",
        "Create a pong game",
        "--keep",
    )
    assert code == 0, output
    register = next(c for c in report["checks"] if c["name"] == "auth: register")
    assert "exists (409): logged in instead" in register["detail"]
    assert report["kept_game_id"] == report["game_id"]
    game = httpx.get(f"{paletai_server.base_url}/games/{report['game_id']}").json()
    assert game["prompt"] == "Create a pong game"
    assert game["author"]["username"]


def test_check_with_a_wrong_password_for_an_existing_account_fails_with_the_api_message(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    email = "wrong-password-check@example.com"
    httpx.post(
        f"{paletai_server.base_url}/auth/register",
        json={"email": email, "password": "the right one 1"},
    ).raise_for_status()
    code, output, report = run_check(
        tmp_path, paletai_server.base_url, "--email", email, "--password", "not the right one"
    )
    assert code == 1
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["auth: register"]
    assert "POST /auth/login answered 401" in failed[0]["detail"]
    # Nothing after a failed login ran (no game was created).
    assert "games: create" not in [c["name"] for c in report["checks"]]


def test_check_require_blob_fails_on_local_images(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_check(tmp_path, paletai_server.base_url, "--require-blob")
    assert code == 1
    failed = [c["name"] for c in report["checks"] if not c["ok"]]
    assert failed == ["image: cover"]
    assert "--require-blob wants blob storage" in output
    # Cleanup still ran.
    assert report["checks"][-1]["name"] == "cleanup: delete the test game"
    assert report["checks"][-1]["ok"]


def test_check_where_nothing_listens_says_cannot_reach(closed_url: str, tmp_path: Path) -> None:
    code, output, report = run_check(tmp_path, closed_url)
    assert code == 1
    assert f"cannot reach {closed_url}/health" in output
    assert [c["name"] for c in report["checks"]] == ["health"]
    assert report["ok"] is False


def test_check_reports_the_failed_tasks_error(
    failing_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_check(tmp_path, failing_server.base_url, "--timeout", "30")
    assert code == 1, output
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["games: generation"]
    detail = failed[0]["detail"]
    assert detail.startswith(f"task {report['task_id']} failed (")
    # The task's own error (the provider could not be reached) is passed on.
    assert "could not reach the AI provider" in detail
    assert "task failed" in output
    assert "FAILED migrate check" in output
    # No game was made, so there is nothing to clean up.
    assert report["game_id"] is None
    assert "cleanup: delete the test game" not in [c["name"] for c in report["checks"]]


def test_check_on_blob_storage_passes_require_blob(
    blob_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_check(tmp_path, blob_server.base_url, "--require-blob")
    assert code == 0, output
    assert report["image_location"].startswith("Azurite-style blob endpoint (127.0.0.1:")
    cover = next(c for c in report["checks"] if c["name"] == "image: cover")
    assert cover["detail"].startswith("PNG ")


def test_check_gives_up_after_its_timeout_and_names_the_task(
    slow_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_check(tmp_path, slow_server.base_url, "--timeout", "1")
    assert code == 1
    [failed] = [c for c in report["checks"] if not c["ok"]]
    assert failed["name"] == "games: generation"
    assert f"task {report['task_id']} still running" in failed["detail"]
    assert "after 1 s (--timeout)" in failed["detail"]


def test_check_refuses_a_url_that_is_not_http(tmp_path: Path) -> None:
    result = runner.invoke(migrate_app, ["check", "ftp://example.com"])
    assert result.exit_code == 2
    assert "not an http(s) URL" in result.output


# --- what the checks look at ------------------------------------------------------------------


def test_csp_problems() -> None:
    assert csp_problems("sandbox allow-scripts; default-src 'none'") == []
    assert csp_problems(None) == ["no Content-Security-Policy header"]
    assert csp_problems("default-src 'none'") == ["CSP has no sandbox directive"]
    problems = csp_problems("sandbox allow-scripts allow-same-origin; default-src 'none'")
    assert len(problems) == 1
    assert "allow-same-origin" in problems[0]


def test_image_location() -> None:
    base = "https://new-app.azurewebsites.net"
    assert image_location(
        "https://paletaistore.blob.core.windows.net/game-images/a.png", base
    ).startswith("Azure Blob Storage (account paletaistore)")
    assert image_location(
        "http://127.0.0.1:10000/devstoreaccount1/game-images/a.png", base
    ).startswith("Azurite-style")
    assert image_location("/static/game-images/a.png", base).startswith(
        "local /static on new-app.azurewebsites.net"
    )
    assert image_location("https://cdn.example.com/a.png", base) == "other host cdn.example.com"
    # The emulator on any local port, with any account name.
    assert (
        image_location("http://127.0.0.1:41234/paletainew/game-images/a.png", base)
        == "Azurite-style blob endpoint (127.0.0.1:41234/paletainew)"
    )
    assert image_location("http://127.0.0.1:8000/static/game-images/a.png", base).startswith(
        "local /static"
    )


def test_missing_endpoints_compares_paths_whatever_the_parameter_names() -> None:
    openapi = {
        "paths": {
            "/games/{id}": {"get": {}, "delete": {}},
            "/games/{id}/like": {"post": {}},
            "/health": {"get": {}},
        }
    }
    missing = missing_endpoints(openapi)
    assert "GET /games/{}" not in missing
    assert "DELETE /games/{}" not in missing
    assert "DELETE /games/{}/like" in missing
    assert "POST /auth/register" in missing


def test_health_problems_name_each_unhealthy_part() -> None:
    body = {"status": "unhealthy", "database": "unhealthy", "api": "healthy"}
    problems = health_problems(503, body)
    assert problems[0] == "status 503, expected 200"
    assert any('"database"' in p for p in problems)
    assert not any('"api"' in p for p in problems)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": "conflict", "message": "already exists"}}, "already exists"),
        ({"detail": [{"loc": ["body", "prompt"], "msg": "too long"}]}, "body.prompt: too long"),
    ],
)
def test_api_error_message(body: dict[str, Any], expected: str) -> None:
    assert api_error_message(httpx.Response(400, json=body)) == expected
