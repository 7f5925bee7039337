"""Every az command line the kit can send is read by the real Azure CLI.

The kit's `--dry-run` prints the exact lines; the real `az` (azure-cli, installed by `make tools`
into its own environment, linked as tools/bin/az) parses each with an empty configuration
directory. A line az understands stops at the login check ("Please run 'az login'"), or, for a
Bicep template, at compiling it (az fetches the Bicep compiler first, which this network
refuses); a mistake in our arguments stops earlier, at az's argument parser, and fails here.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paletai.cli import app as paletai_app
from paletai.ops.azure.az import AzCli
from paletai.ops.azure.decommission import Stage
from paletai.ops.azure.decommission import az_args as decommission_args
from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.azure.settings_cli import settings_app
from paletai.ops.checks.cli import migrate_app
from tests.fixtures.fake_az import FAKE_AZ, FakeAz
from tests.ops.azure.answers import window_answer, with_app
from tests.ops.azure.test_verify import verify_command_lines

REPO = Path(__file__).resolve().parents[3]
REAL_AZ = REPO / "tools" / "bin" / "az"
runner = CliRunner()

ARGUMENT_ERRORS = (
    "unrecognized arguments",
    "the following arguments are required",
    "invalid choice",
    "error: argument",
    "is misspelled or not recognized",
)
GOT_PAST_THE_PARSER = (
    "Please run 'az login'",
    'Please run "az login"',  # `account list` says it this way (a warning, then [])
    # `deployment group create|what-if --template-file X.bicep` compiles X with a Bicep it
    # downloads first, before anything else; there is no network here.
    "Error while attempting to retrieve the latest Bicep version",
)
SECRETS = {
    "DB_PATH": "mongodb://user:S3cret-pass@db.example.net/paletai",
    "JWT_SECRET_KEY": "jwt-" + "k" * 40,
    "OPENAI_API_KEY": "sk-test-0123456789",
}


def _dry_run(*args: str) -> list[str]:
    result = runner.invoke(deploy_app, [*args, "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"{args}: printed no command"
    for line in lines:
        assert line.startswith("az "), line
    return lines


def _settings_dry_run(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`settings apply --dry-run`: its one `az ...` line (the table and checks around it are not
    command lines)."""
    values = {"AI_PROVIDER": "offline", "OPENAI_MODEL": "gpt-4o"}
    with tempfile.TemporaryDirectory() as folder:
        settings_file = Path(folder) / "settings.json"
        settings_file.write_text(json.dumps(values))
        result = runner.invoke(
            settings_app,
            ["apply", str(settings_file), "--app", "paletai-new", "-g", "rg", "--slot", "staging"]
            + ["--subscription", "sub-1", "--dry-run"],
        )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("az ")]
    assert len(lines) == 1, result.output
    return lines


def _recorded_lines(monkeypatch: pytest.MonkeyPatch, fake_az: FakeAz) -> list[str]:
    """The lines of the read-only commands (no --dry-run), as the fake az received them."""
    monkeypatch.setenv("PATH", f"{fake_az.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    with_app(fake_az)
    fake_az.respond("rest", window_answer())
    fake_az.respond("webapp log tail", "2026-12-01T10:00:01  [INFO] GET /health 200", raw=True)
    for command in (
        ["migrate", "inventory", "--app", "emailgeniebackend", "-g", "huddleup"],
        ["migrate", "insights", "--app", "paletai-new", "-g", "rg-paletai-prod"],
        ["migrate", "logs", "--app", "paletai-new", "-g", "rg-paletai-prod", "--seconds", "5"],
    ):
        result = runner.invoke(paletai_app, command)
        assert result.exit_code in (0, 1), result.output
    return list(dict.fromkeys(shlex.join(["az", *argv]) for argv in fake_az.argvs()))


def kit_command_lines(monkeypatch: pytest.MonkeyPatch, fake_az: FakeAz) -> list[str]:
    """Every az command line the kit's commands can run, as their --dry-run prints them."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    template = str(REPO / "deploy" / "main.bicep")
    parameters = str(REPO / "deploy" / "parameters.json")
    infra = ["infra", "-g", "rg-paletai-prod", "-l", "westus3", "--subscription", "sub-1"]
    infra += ["--template", template, "--parameters", parameters, "--set", "skuName=B2"]
    infra += ["--deployment-name", "paletai-test"]
    lines = _dry_run(*infra)
    lines += _dry_run(*infra, "--what-if")
    lines += _dry_run("app", "--name", "paletai-new", "-g", "rg-paletai-prod", "--zip", template)
    lines += _dry_run("stop-old", "--name", "emailgeniebackend", "-g", "huddleup")
    lines += _dry_run("start", "--name", "emailgeniebackend", "-g", "huddleup")
    lines += _settings_dry_run(monkeypatch)
    domain = ["domain", "add", "api.paletai.com", "--app", "paletai-new", "-g", "rg-paletai-prod"]
    lines += _dry_run(*domain, "--subscription", "sub-1")
    lines += verify_command_lines()  # read-only: recorded from a run against the fake az
    lines += _preflight_lines(monkeypatch)
    lines += _recorded_lines(monkeypatch, fake_az)
    decommission = ["decommission", "--app", "emailgeniebackend", "-g", "huddleup"]
    decommission += ["--cutover-at", "2024-01-01T00:00:00Z", "--subscription", "sub-1"]
    lines += _dry_run(*decommission, "--stage", "stop")
    # The delete stages also need a fresh backup in Blob Storage; their lines come from the
    # same function (test_decommission.py runs them through the CLI against Azurite).
    az = AzCli("az", subscription="sub-1")
    for stage in (Stage.DELETE_APP, Stage.DELETE_GROUP):
        lines.append(az.command_line(decommission_args(stage, "emailgeniebackend", "huddleup")))
    return lines


def _preflight_lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The az lines `migrate preflight` runs (it has no dry run: they are recorded from a fake
    az), for a user and for a service principal sign-in."""
    recorded: list[str] = []
    for kind, name in (("user", "ops@contoso.example"), ("servicePrincipal", "app-id-1")):
        with tempfile.TemporaryDirectory() as tmp, monkeypatch.context() as m:
            fake = FakeAz(Path(tmp), Path(tmp) / "az-calls.jsonl")
            (fake.bin_dir / "az").write_text(FAKE_AZ.format(python=sys.executable))
            (fake.bin_dir / "az").chmod(0o755)
            m.setenv("PATH", f"{fake.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
            m.setenv("FAKE_AZ_LOG", str(fake.log))
            m.setenv("FAKE_AZ_RESPONSES", str(fake.responses_file))
            for setting in ("DB_PATH", "OPENAI_API_KEY"):
                m.delenv(setting, raising=False)
            m.chdir(tmp)
            account: dict[str, object] = {"id": "sub-1", "name": "Prod", "state": "Enabled"}
            account.update(tenantId="t-1", user={"name": name, "type": kind})
            fake.respond("account show", account)
            fake.respond("account list", [account])
            fake.respond("role assignment list", [])
            args = ["preflight", "--tenant", "t-1", "--subscription", "sub-1"]
            result = runner.invoke(migrate_app, args)
            assert result.exit_code == 1, result.output  # no MongoDB URI, no role: failed checks
            recorded += ["az " + shlex.join(argv) for argv in fake.argvs()]
    assert json.dumps(recorded).count("role assignment list") == 2, recorded
    return list(dict.fromkeys(recorded))


def test_dry_runs_print_every_call_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_az: FakeAz
) -> None:
    # No az on PATH: a dry run needs none and runs none (the fake is put back for the others).
    monkeypatch.setenv("PATH", str(tmp_path))
    lines = kit_command_lines(monkeypatch, fake_az)
    text = "\n".join(lines)
    for secret in SECRETS.values():
        assert secret not in text
    verbs = [" ".join(shlex.split(line)[1:4]) for line in lines]
    assert verbs[:2] == ["group create --name", "deployment group create"]
    assert "deployment group what-if" in verbs
    assert "webapp stop --name" in verbs
    assert "webapp start --name" in verbs
    assert any(line.startswith("az webapp deployment source config-zip") for line in lines)
    assert all("--subscription sub-1" in line for line in lines[:3])
    # The read-only commands' lines, recorded from the fake az: inventory, insights, logs.
    for words in (
        "webapp config appsettings list",
        "webapp config hostname list",
        "webapp config ssl list",
        "appservice plan show",
        "resource list",
        "resource show",
        "rest --method post --url https://api.applicationinsights.io/v1/apps/",
        "webapp log tail",
    ):
        assert any(line.startswith(f"az {words}") for line in lines), words


def test_the_real_az_parses_every_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_az: FakeAz
) -> None:
    assert REAL_AZ.exists(), "the Azure CLI is not installed: run `make tools`"
    lines = kit_command_lines(monkeypatch, fake_az)
    env = {
        **os.environ,
        "AZURE_CONFIG_DIR": str(tmp_path / "azure"),  # empty: logged in nowhere
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
    }
    outcomes: dict[str, str] = {}
    for line in lines:
        argv = shlex.split(line)
        argv[0] = str(REAL_AZ)
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=180, check=False
        )
        said = done.stderr + done.stdout
        assert not any(e in said for e in ARGUMENT_ERRORS), f"{line}\n{said}"
        assert any(ok in said for ok in GOT_PAST_THE_PARSER), f"{line}\n{said}"
        outcomes[line] = said
    # The same check catches a misspelt option (so a pass above means something).
    bad = [str(REAL_AZ), "webapp", "stop", "--nmae", "x", "--resource-group", "y"]
    done = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=180, check=False)
    assert any(e in done.stderr for e in ARGUMENT_ERRORS), done.stderr
    assert len(outcomes) == len(set(lines))
