"""Settings: the old App Service names work unchanged; bad values stop start-up with one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paletai.cli import app
from paletai.config import Settings, SettingsError, load_settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name in Settings.model_fields:
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("raw", "value"), [("True", True), ("true", True), ("1", True), ("False", False), ("0", False)]
)
def test_legacy_booleans(raw: str, value: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_STREAMING", raw)
    monkeypatch.setenv("IS_LOCAL_ENV", raw)
    loaded = load_settings(_env_file=None)
    assert loaded.ENABLE_STREAMING is value
    assert loaded.IS_LOCAL_ENV is value


def test_bad_boolean_is_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_STREAMING", "maybe")
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert str(info.value).startswith("ENABLE_STREAMING:")
    assert len(str(info.value).splitlines()) == 1


def test_bad_mongo_uri_is_refused() -> None:
    with pytest.raises(SettingsError, match="DB_PATH"):
        load_settings(_env_file=None, DB_PATH="postgres://x")


def test_provider_selection_follows_legacy_flags() -> None:
    assert settings().ai_provider == "offline"
    assert settings(OPENAI_API_KEY="k").ai_provider == "openai"
    assert settings(ANTHROPIC_API_KEY="k", IS_ANTHROPIC_ENDPOINT="True").ai_provider == "anthropic"
    assert (
        settings(
            IS_OPENAI_ENDPOINT="True",
            AZURE_OPENAI_ENDPOINT="https://x.openai.azure.com",
            AZURE_OPENAI_API_KEY="k",
        ).ai_provider
        == "azure-openai"
    )
    assert settings(AI_PROVIDER="offline", OPENAI_API_KEY="k").ai_provider == "offline"


def test_problems_name_each_setting() -> None:
    problems = settings(
        ENVIRONMENT="production", AI_PROVIDER="anthropic", JWT_SECRET_KEY="changeme"
    ).problems()
    assert "ANTHROPIC_API_KEY: required when AI_PROVIDER=anthropic" in problems
    assert "DB_PATH: required in production (the MongoDB URI)" in problems
    assert any(p.startswith("JWT_SECRET_KEY: is a placeholder") for p in problems)
    assert settings().problems() == []


def test_cors_origins_accept_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert load_settings(_env_file=None).CORS_ORIGINS == ["https://a.example", "https://b.example"]


def test_jwt_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings(PALETAI_DATA_DIR=tmp_path).jwt_secret()
    second = settings(PALETAI_DATA_DIR=tmp_path).jwt_secret()
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o077 == 0


def test_config_show_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    monkeypatch.setenv("DB_PATH", "mongodb://user:hunter2@db.example:27017/paletai")
    result = CliRunner().invoke(app, ["config", "show"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "OPENAI_API_KEY" in result.output
    assert "sk-very-secret-value" not in result.output
    assert "hunter2" not in result.output
    assert "openai" in result.output


def test_config_check_exits_1_with_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AI_PROVIDER", "openai")
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "OPENAI_API_KEY: required when AI_PROVIDER=openai" in lines
    assert "DB_PATH: required in production (the MongoDB URI)" in lines
    assert "JWT_SECRET_KEY: required in production" in lines


def test_config_reads_a_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DAILY_PROMPT_LIMIT=7\nIS_LOCAL_ENV=True\n")
    loaded = load_settings()
    assert loaded.DAILY_PROMPT_LIMIT == 7
    assert loaded.IS_LOCAL_ENV is True


def test_serve_refuses_bad_settings_with_a_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAILY_PROMPT_LIMIT", "lots")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "DAILY_PROMPT_LIMIT" in result.output


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("mongodb://db.example:notaport/paletai", "Port contains non-digit characters"),
        ("mongodb://db.example:99999", "Port must be an integer"),
        ("mongodb+srv://cluster0.example.net:27017/paletai", "must not include a port"),
        ("mongodb://user:p@ss:word@db.example/paletai", "must be escaped"),
    ],
)
def test_config_check_refuses_a_malformed_db_path_in_one_line(
    uri: str, says: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DB_PATH", uri)
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("PaletAI cannot start, fix this setting: DB_PATH:")
    assert says in lines[0]
    assert "Traceback" not in result.output


def test_a_db_path_the_driver_accepts_passes_config_check() -> None:
    # Unknown options only make the driver warn, so they do not stop start-up either.
    loaded = settings(
        DB_PATH="mongodb+srv://u:p@cluster0.example.net/paletai?retryWrites=true&w=majority&foo=1"
    )
    assert loaded.DB_PATH is not None
