"""`paletai deploy ...` against a fake `az` on PATH: the exact calls, secrets kept off argv."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paletai.ops.azure import deploy as ops
from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.results import DeployAppResult, DeployInfraResult, parse_result
from tests.fixtures.fake_az import FakeAz

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()

SECRETS = {
    "DB_PATH": "mongodb+srv://paletai:S3cret-db-pass@cluster0.example.net/paletai",
    "JWT_SECRET_KEY": "jwt-" + "k" * 40,
    "OPENAI_API_KEY": "sk-test-openai-0123456789",
    "ONESIGNAL_REST_API_KEY": "os-rest-key-9876543210",
}


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for var in ops.SECRET_PARAMETERS.values():
        monkeypatch.delenv(var, raising=False)
    for var, value in SECRETS.items():
        monkeypatch.setenv(var, value)
    return SECRETS


def _temp_files(argv: list[str]) -> list[Path]:
    return [Path(a[1:]) for a in argv if a.startswith("@") and "paletai-secrets-" in a]


# --- infra ----------------------------------------------------------------------------------


def test_infra_runs_group_create_then_the_deployment(
    fake_az: FakeAz, secrets_env: dict[str, str], tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs.json"
    result = runner.invoke(
        deploy_app,
        [
            "infra",
            "--resource-group",
            "rg-paletai-prod",
            "--location",
            "westus3",
            "--subscription",
            "sub-123",
            "--template",
            str(REPO / "deploy/main.bicep"),
            "--parameters",
            str(REPO / "deploy/parameters.json"),
            "--set",
            "skuName=B2",
            "--deployment-name",
            "paletai-test",
            "--outputs",
            str(outputs),
            "--json",
            str(tmp_path / "results" / "deploy-infra.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    argvs = fake_az.argvs()
    assert argvs[0] == [
        "group",
        "create",
        "--name",
        "rg-paletai-prod",
        "--location",
        "westus3",
        "--output",
        "json",
        "--subscription",
        "sub-123",
    ]
    [secret_file] = _temp_files(argvs[1])
    assert argvs[1] == [
        "deployment",
        "group",
        "create",
        "--resource-group",
        "rg-paletai-prod",
        "--name",
        "paletai-test",
        "--template-file",
        str(REPO / "deploy/main.bicep"),
        "--parameters",
        f"@{REPO / 'deploy/parameters.json'}",
        "--parameters",
        f"@{secret_file}",
        "--parameters",
        "skuName=B2",
        "--output",
        "json",
        "--subscription",
        "sub-123",
    ]
    assert len(argvs) == 2

    # The secrets reached az in a 0600 file with the Bicep parameter names, and nowhere else.
    seen = fake_az.calls()[1]["files"][str(secret_file)]
    assert seen["mode"] == 0o600
    assert seen["content"]["parameters"] == {
        "dbPath": {"value": SECRETS["DB_PATH"]},
        "jwtSecretKey": {"value": SECRETS["JWT_SECRET_KEY"]},
        "openAiApiKey": {"value": SECRETS["OPENAI_API_KEY"]},
        "oneSignalRestApiKey": {"value": SECRETS["ONESIGNAL_REST_API_KEY"]},
    }
    assert not secret_file.exists(), "the temporary parameters file must be removed"
    for argv in argvs:
        for value in SECRETS.values():
            assert all(value not in arg for arg in argv)
    for value in SECRETS.values():
        assert value not in result.output

    written = json.loads(outputs.read_text())
    assert written == {
        "webAppName": "paletai-abc123",
        "webAppUrl": "https://paletai-abc123.azurewebsites.net",
        "storageAccountName": "paletaiabc123",
        "appInsightsName": "paletai-insights-abc123",
    }
    assert "https://paletai-abc123.azurewebsites.net" in result.stdout
    assert "paletaiabc123" in result.stdout
    recorded = parse_result(json.loads((tmp_path / "results" / "deploy-infra.json").read_text()))
    assert isinstance(recorded, DeployInfraResult)
    assert (recorded.ok, recorded.deployment_name, recorded.location) == (
        True,
        "paletai-test",
        "westus3",
    )
    assert recorded.outputs == written
    assert recorded.outputs_file == str(outputs)
    assert recorded.overrides == ["skuName"]
    assert all(value not in recorded.model_dump_json() for value in SECRETS.values())


def test_infra_defaults_without_subscription_name_the_deployment(
    fake_az: FakeAz, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)  # the default template and parameters are relative to the repo
    result = runner.invoke(deploy_app, ["infra", "-g", "rg", "-l", "westus3"])
    assert result.exit_code == 0, result.output
    group, deployment = fake_az.argvs()
    assert "--subscription" not in group + deployment
    name = deployment[deployment.index("--name") + 1]
    assert name.startswith("paletai-")
    assert len(name) == len("paletai-20260101-120000")
    assert deployment[deployment.index("--template-file") + 1] == "deploy/main.bicep"
    assert "@deploy/parameters.json" in deployment


def test_infra_with_a_failing_az_exits_1_with_its_message_and_no_secret(
    fake_az: FakeAz,
    secrets_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("FAKE_AZ_FAIL", "deployment group create")
    # az sometimes echoes what it was given; a secret in its message must not reach the terminal.
    monkeypatch.setenv(
        "FAKE_AZ_STDERR",
        "ERROR: InvalidTemplateDeployment: the value "
        f"'{SECRETS['DB_PATH']}' of parameter 'dbPath' is not valid",
    )
    out = tmp_path / "deploy-infra.json"
    result = runner.invoke(
        deploy_app,
        [
            "infra", "-g", "rg", "-l", "westus3", "--template", str(REPO / "deploy/main.bicep"),
            "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "az deployment group create" in result.output
    recorded = parse_result(json.loads(out.read_text()))
    assert isinstance(recorded, DeployInfraResult)
    assert not recorded.ok
    assert recorded.error is not None
    assert "InvalidTemplateDeployment" in recorded.error
    assert SECRETS["DB_PATH"] not in out.read_text()
    assert "InvalidTemplateDeployment" in result.output
    assert "of parameter 'dbPath' is not valid" in result.output
    assert SECRETS["DB_PATH"] not in result.output
    [secret_file] = _temp_files(fake_az.argvs()[1])
    assert not secret_file.exists(), "removed even when the deployment fails"


def test_infra_failing_group_create_stops_before_the_deployment(
    fake_az: FakeAz, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_AZ_FAIL", "group create")
    monkeypatch.setenv("FAKE_AZ_STDERR", "ERROR: Please run 'az login' to setup account.")
    result = runner.invoke(
        deploy_app,
        ["infra", "-g", "rg", "-l", "westus3", "--template", str(REPO / "deploy/main.bicep")],
    )
    assert result.exit_code == 1
    assert "error: az is not signed in; run `az login --tenant TENANT_ID`" in result.output
    assert len(fake_az.argvs()) == 1


@pytest.mark.parametrize("missing", ["DB_PATH", "JWT_SECRET_KEY"])
def test_infra_without_a_required_secret_calls_no_az(
    fake_az: FakeAz, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)
    result = runner.invoke(deploy_app, ["infra", "-g", "rg", "-l", "westus3"])
    assert result.exit_code == 1
    assert missing in result.output
    assert fake_az.argvs() == []


def test_infra_refuses_a_short_jwt_secret(
    fake_az: FakeAz, secrets_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_SECRET_KEY", "short")
    result = runner.invoke(deploy_app, ["infra", "-g", "rg", "-l", "westus3"])
    assert result.exit_code == 1
    assert "at least 32 characters" in result.output
    assert fake_az.argvs() == []


def test_infra_refuses_a_secret_on_the_command_line(
    fake_az: FakeAz, secrets_env: dict[str, str]
) -> None:
    result = runner.invoke(
        deploy_app, ["infra", "-g", "rg", "-l", "westus3", "--set", "openAiApiKey=sk-live-1"]
    )
    assert result.exit_code == 1
    assert "OPENAI_API_KEY" in result.output
    assert "environment" in result.output
    assert fake_az.argvs() == []


def test_infra_without_az_on_path_says_how_to_install_it(
    secrets_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result = runner.invoke(
        deploy_app,
        ["infra", "-g", "rg", "-l", "westus3", "--template", str(REPO / "deploy/main.bicep")],
    )
    assert result.exit_code == 1
    assert "install the Azure CLI" in result.output


# --- package --------------------------------------------------------------------------------


def _project(root: Path) -> Path:
    """A small paletai tree with everything a package must leave out."""
    files = {
        "pyproject.toml": '[project]\nname = "paletai"\nversion = "0.1.0"\n'
        'dependencies = ["fastapi>=0.115", "pymongo>=4.10,<5", "uvicorn[standard]>=0.30"]\n',
        "README.md": "# PaletAI\n",
        "deploy/startup.sh": "#!/usr/bin/env bash\nexec gunicorn paletai.main:app\n",
        "deploy/main.bicep": "// not shipped\n",
        "src/paletai/__init__.py": "",
        "src/paletai/main.py": "app = None\n",
        "src/paletai/generation/templates/snake.html": "<html></html>\n",
        "src/paletai/__pycache__/main.cpython-311.pyc": "x",
        "src/paletai/stale.pyc": "x",
        "src/paletai.egg-info/PKG-INFO": "x",
        "src/paletai/tests/test_inner.py": "x",
        "src/.paletai/db/data": "x",
        "tests/test_x.py": "x",
        ".git/HEAD": "x",
        ".venv/bin/python": "x",
        "tools/node_modules/azurite/index.js": "x",
        ".paletai/jwt_secret": "x",
        "requirements.txt": "stale\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_package_has_the_app_and_nothing_excluded(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    out = tmp_path / "deploy.zip"
    result = runner.invoke(deploy_app, ["package", "--root", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        requirements = archive.read("requirements.txt").decode()
        startup = archive.getinfo("deploy/startup.sh")
        main = archive.getinfo("src/paletai/main.py")
    assert names == [
        "README.md",
        "deploy/startup.sh",
        "pyproject.toml",
        "requirements.txt",
        "src/paletai/__init__.py",
        "src/paletai/generation/templates/snake.html",
        "src/paletai/main.py",
    ]
    reqs = [line for line in requirements.splitlines() if not line.startswith("#")]
    assert reqs == ["fastapi>=0.115", "pymongo>=4.10,<5", "uvicorn[standard]>=0.30"]
    assert stat.S_IMODE(startup.external_attr >> 16) == 0o755
    assert stat.S_IMODE(main.external_attr >> 16) == 0o644
    assert "7 files" in result.stdout


def test_package_is_deterministic(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    ops.build_package(root, first)
    # Touch every file: timestamps must not change the bytes.
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
    ops.build_package(root, second)
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )


def test_package_of_this_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "src")  # the root is found by walking up
    out = tmp_path / "deploy.zip"
    result = runner.invoke(deploy_app, ["package", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        requirements = archive.read("requirements.txt").decode()
    assert {"src/paletai/main.py", "deploy/startup.sh", "pyproject.toml", "requirements.txt"} <= (
        names
    )
    assert any(n.startswith("src/paletai/generation/templates/") for n in names)
    for name in names:
        parts = name.split("/")
        assert not {"__pycache__", "tests", ".git", ".venv", "node_modules", ".paletai"} & set(
            parts
        ), name
        assert not name.endswith(".pyc"), name
        assert ".egg-info" not in name, name
        assert parts[0] in {"src", "deploy", "pyproject.toml", "README.md", "requirements.txt"}
    assert "gunicorn>=22" in requirements.splitlines()
    assert "uvicorn-worker>=0.2" in requirements.splitlines()


def test_package_without_the_startup_script_fails(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    (root / "deploy/startup.sh").unlink()
    result = runner.invoke(deploy_app, ["package", "--root", str(root), "--out", "x.zip"])
    assert result.exit_code == 1
    assert "startup.sh" in result.output


# --- app ------------------------------------------------------------------------------------


def test_app_sets_the_startup_command_then_zip_deploys(fake_az: FakeAz, tmp_path: Path) -> None:
    package = tmp_path / "deploy.zip"
    package.write_bytes(b"PK")
    out = tmp_path / "deploy-app.json"
    result = runner.invoke(
        deploy_app,
        [
            "app", "--name", "paletai-abc123", "-g", "rg-paletai-prod", "--zip", str(package),
            "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    recorded = parse_result(json.loads(out.read_text()))
    assert isinstance(recorded, DeployAppResult)
    assert (recorded.ok, recorded.app, recorded.package_bytes) == (True, "paletai-abc123", 2)
    assert recorded.package_sha256 == hashlib.sha256(b"PK").hexdigest()
    assert fake_az.argvs() == [
        [
            "webapp", "config", "set", "--name", "paletai-abc123",
            "--resource-group", "rg-paletai-prod", "--startup-file", "bash deploy/startup.sh",
            "--output", "json",
        ],
        [
            "webapp", "deployment", "source", "config-zip", "--name", "paletai-abc123",
            "--resource-group", "rg-paletai-prod", "--src", str(package), "--output", "json",
        ],
    ]  # fmt: skip


def test_app_without_a_package_calls_no_az(fake_az: FakeAz, tmp_path: Path) -> None:
    result = runner.invoke(
        deploy_app, ["app", "-n", "app", "-g", "rg", "--zip", str(tmp_path / "missing.zip")]
    )
    assert result.exit_code == 1
    assert "paletai deploy package" in result.output
    assert fake_az.argvs() == []


def test_app_shows_a_failing_config_zip(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "deploy.zip"
    package.write_bytes(b"PK")
    monkeypatch.setenv("FAKE_AZ_FAIL", "config-zip")
    monkeypatch.setenv("FAKE_AZ_STDERR", "ERROR: Zip deployment failed. Oryx build failed.")
    out = tmp_path / "deploy-app.json"
    result = runner.invoke(
        deploy_app, ["app", "-n", "app", "-g", "rg", "--zip", str(package), "--json", str(out)]
    )
    assert result.exit_code == 1
    assert "Oryx build failed" in result.output
    recorded = parse_result(json.loads(out.read_text()))
    assert isinstance(recorded, DeployAppResult)
    assert not recorded.ok
    assert recorded.error is not None
    assert "Oryx build failed" in recorded.error


# --- stop-old / start -----------------------------------------------------------------------


def test_stop_old_with_yes_stops_and_reports_the_state(fake_az: FakeAz) -> None:
    result = runner.invoke(
        deploy_app, ["stop-old", "--name", "emailgeniebackend", "-g", "huddleup", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert fake_az.argvs() == [
        ["webapp", "stop", "--name", "emailgeniebackend", "--resource-group", "huddleup",
         "--output", "json"],
        ["webapp", "show", "--name", "emailgeniebackend", "--resource-group", "huddleup",
         "--query", "state", "--output", "json"],
    ]  # fmt: skip
    assert "emailgeniebackend: Stopped" in result.stdout


def test_stop_old_asks_first_and_a_no_changes_nothing(fake_az: FakeAz) -> None:
    result = runner.invoke(
        deploy_app, ["stop-old", "-n", "emailgeniebackend", "-g", "huddleup"], input="n\n"
    )
    assert result.exit_code == 1
    assert "stop web app emailgeniebackend in huddleup?" in result.output
    assert fake_az.argvs() == []


def test_rollback_starts_the_old_app_again(fake_az: FakeAz) -> None:
    runner.invoke(deploy_app, ["stop-old", "-n", "old", "-g", "huddleup", "--yes"])
    result = runner.invoke(deploy_app, ["start", "-n", "old", "-g", "huddleup"], input="y\n")
    assert result.exit_code == 0, result.output
    assert [argv[:2] for argv in fake_az.argvs()] == [
        ["webapp", "stop"],
        ["webapp", "show"],
        ["webapp", "start"],
        ["webapp", "show"],
    ]
    assert "old: Running" in result.stdout


def test_fake_az_answers_what_a_test_gives_it(fake_az: FakeAz) -> None:
    """The fixture other az tests build on: a given answer wins, with its exit code and stderr."""

    fake_az.respond("role assignment list", [{"roleDefinitionName": "Owner"}])
    fake_az.respond("account show", exit_code=1, stderr="Please run 'az login' to setup account.")
    ok = subprocess.run(
        ["az", "role", "assignment", "list", "--assignee", "x"], capture_output=True, text=True
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout) == [{"roleDefinitionName": "Owner"}]
    bad = subprocess.run(["az", "account", "show"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "az login" in bad.stderr
    assert fake_az.calls_of("role assignment list") == [
        ["role", "assignment", "list", "--assignee", "x"]
    ]
