"""Deploying PaletAI to Azure App Service through the `az` CLI (checklist Phases 1, 2 and 7).

The infrastructure is `deploy/main.bicep`; secrets reach it through a temporary parameters file
(mode 0600, removed afterwards), never through the command line, where shell history and process
lists would keep them. The ZIP package is what App Service's Oryx build expects: a
requirements.txt at the root, the code under src/, and the startup script.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from paletai.ops.azure.az import AzCli, DeployError

# Bicep @secure() parameters of deploy/main.bicep and the environment variables they come from
# (the app's own setting names).
SECRET_PARAMETERS: dict[str, str] = {
    "dbPath": "DB_PATH",
    "jwtSecretKey": "JWT_SECRET_KEY",
    "openAiApiKey": "OPENAI_API_KEY",
    "azureOpenAiApiKey": "AZURE_OPENAI_API_KEY",
    "anthropicApiKey": "ANTHROPIC_API_KEY",
    "oneSignalRestApiKey": "ONESIGNAL_REST_API_KEY",
}
# Secure parameters without a default in main.bicep.
REQUIRED_SECRET_PARAMETERS = ("dbPath", "jwtSecretKey")
JWT_SECRET_MIN_LENGTH = 32

# The web app's appCommandLine; deploy/startup.sh is in every package.
STARTUP_COMMAND = "bash deploy/startup.sh"
STARTUP_SCRIPT = "deploy/startup.sh"

DEPLOYMENT_PARAMETERS_SCHEMA = (
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"
)

# Never shipped: VCS, caches, virtualenvs, tests, node tools, the local data dir, build metadata.
PACKAGE_EXCLUDED_DIRS = frozenset(
    {
        ".git",
        "__pycache__",
        ".venv",
        "venv",
        "tests",
        "node_modules",
        ".paletai",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)
PACKAGE_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
# A fixed timestamp: the same tree gives the same ZIP, byte for byte.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)

_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- Phase 1: infrastructure ----------------------------------------------------------------


def secrets_from_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The secure Bicep parameters that are set in `env`; DeployError for missing required ones."""
    missing = [
        SECRET_PARAMETERS[p]
        for p in REQUIRED_SECRET_PARAMETERS
        if not env.get(SECRET_PARAMETERS[p])
    ]
    if missing:
        raise DeployError(
            f"set {' and '.join(missing)} in the environment: secrets are read from there, "
            "never from the command line (DB_PATH is the new app's MongoDB URI, "
            f"JWT_SECRET_KEY a random string of {JWT_SECRET_MIN_LENGTH}+ characters)"
        )
    if len(env[SECRET_PARAMETERS["jwtSecretKey"]]) < JWT_SECRET_MIN_LENGTH:
        raise DeployError(f"JWT_SECRET_KEY must be at least {JWT_SECRET_MIN_LENGTH} characters")
    return {param: env[var] for param, var in SECRET_PARAMETERS.items() if env.get(var)}


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs for non-secret parameters; a secret name is refused."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not _PARAMETER_NAME.match(name):
            raise DeployError(f"--set expects NAME=VALUE with a Bicep parameter name, got {name!r}")
        if name in SECRET_PARAMETERS:
            raise DeployError(
                f"{name} is a secret: set {SECRET_PARAMETERS[name]} in the environment instead "
                "of passing it on the command line"
            )
        out[name] = value
    return out


def parameters_document(values: Mapping[str, str]) -> dict[str, Any]:
    """An ARM deployment parameters file holding `values`."""
    return {
        "$schema": DEPLOYMENT_PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {name: {"value": value} for name, value in values.items()},
    }


@contextmanager
def secret_parameters_file(values: Mapping[str, str]) -> Iterator[Path]:
    """A parameters file readable by this user only, removed when the block ends."""
    fd, name = tempfile.mkstemp(prefix="paletai-secrets-", suffix=".json")
    path = Path(name)
    try:
        os.chmod(path, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(parameters_document(values), fh)
        yield path
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class InfraRequest:
    resource_group: str
    location: str
    template: Path
    parameters_file: Path | None
    overrides: Mapping[str, str]
    deployment_name: str


@dataclass
class WhatIfChange:
    kind: str  # Create, Modify, Delete, NoChange, Ignore, Deploy
    resource: str


def _deployment_args(verb: str, request: InfraRequest, secret_file: Path) -> list[str]:
    args = [
        "deployment",
        "group",
        verb,
        "--resource-group",
        request.resource_group,
        "--name",
        request.deployment_name,
        "--template-file",
        str(request.template),
    ]
    if request.parameters_file is not None:
        args += ["--parameters", f"@{request.parameters_file}"]
    args += ["--parameters", f"@{secret_file}"]
    # Last, so that they win over the example file.
    for name, value in request.overrides.items():
        args += ["--parameters", f"{name}={value}"]
    return args


def _check_files(request: InfraRequest) -> None:
    if not request.template.is_file():
        raise DeployError(f"template not found: {request.template} (pass --template)")
    if request.parameters_file is not None and not request.parameters_file.is_file():
        raise DeployError(f"parameters file not found: {request.parameters_file}")


def what_if_infra(
    az: AzCli, request: InfraRequest, secrets: Mapping[str, str]
) -> list[WhatIfChange]:
    """`az deployment group what-if`: what the deployment would create, change or delete (the
    resource group must exist already; nothing is changed)."""
    _check_files(request)
    with secret_parameters_file(secrets) as secret_file:
        result = az.run(*_deployment_args("what-if", request, secret_file), "--no-pretty-print")
    if az.dry_run or result is None:
        return []
    try:
        return [
            WhatIfChange(str(c.get("changeType")), str(c.get("resourceId")))
            for c in result.get("changes", [])
        ]
    except AttributeError as exc:
        raise DeployError(f"unexpected answer from az deployment group what-if: {exc}") from None


def deploy_infra(az: AzCli, request: InfraRequest, secrets: Mapping[str, str]) -> dict[str, Any]:
    """`az group create` then `az deployment group create`; the deployment's outputs."""
    _check_files(request)
    az.run("group", "create", "--name", request.resource_group, "--location", request.location)
    with secret_parameters_file(secrets) as secret_file:
        result = az.run(*_deployment_args("create", request, secret_file))
    if az.dry_run:
        return {}
    return deployment_outputs(result)


def deployment_outputs(result: Any) -> dict[str, Any]:
    """{name: value} from `az deployment group create` output."""
    try:
        outputs = result["properties"]["outputs"] or {}
        return {name: entry["value"] for name, entry in outputs.items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise DeployError(
            f"az answered without deployment outputs (missing {exc}); "
            "see the deployment in the Azure portal"
        ) from exc


# --- Phase 2: the ZIP package and the app ----------------------------------------------------


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above `start` whose pyproject.toml is the paletai project."""
    for folder in (start.resolve(), *start.resolve().parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _project_name(pyproject) == "paletai":
            return folder
    raise DeployError(f"no paletai pyproject.toml at or above {start}; pass --root")


def _project_name(pyproject: Path) -> str | None:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    name = data.get("project", {}).get("name")
    return name if isinstance(name, str) else None


def requirements_txt(pyproject: Path) -> str:
    """requirements.txt for Oryx: the project's runtime dependencies, as pyproject lists them."""
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        deps = data["project"]["dependencies"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise DeployError(f"cannot read [project].dependencies from {pyproject}: {exc}") from exc
    lines = [
        "# Generated by `paletai deploy package` from pyproject.toml; App Service's build",
        "# (Oryx) installs it. The code itself runs from src/ (see deploy/startup.sh).",
        *[str(dep) for dep in deps],
    ]
    return "\n".join(lines) + "\n"


def _excluded(relative: Path) -> bool:
    for part in relative.parts:
        if part in PACKAGE_EXCLUDED_DIRS or part.endswith(PACKAGE_EXCLUDED_SUFFIXES):
            return True
    return False


def package_files(root: Path) -> dict[str, Path | bytes]:
    """Archive name -> file (or generated content) of the package, in archive order."""
    src = root / "src"
    if not src.is_dir():
        raise DeployError(f"{root} has no src/ folder")
    startup = root / STARTUP_SCRIPT
    if not startup.is_file():
        raise DeployError(f"{startup} is missing: the app's startup command runs it")
    entries: dict[str, Path | bytes] = {}
    for path in src.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and not _excluded(relative):
            entries[relative.as_posix()] = path
    entries["pyproject.toml"] = root / "pyproject.toml"
    if (root / "README.md").is_file():  # pyproject's `readme`: `pip install .` needs it
        entries["README.md"] = root / "README.md"
    entries["requirements.txt"] = requirements_txt(root / "pyproject.toml").encode()
    entries[STARTUP_SCRIPT] = startup
    return dict(sorted(entries.items()))


@dataclass(frozen=True)
class PackageReport:
    path: Path
    files: list[str]
    size: int


def build_package(root: Path, out: Path) -> PackageReport:
    """Write the ZIP that `az webapp deployment source config-zip` deploys; deterministic."""
    entries = package_files(root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured
            mode = 0o755 if name == STARTUP_SCRIPT else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(buffer.getvalue())
    partial.replace(out)
    return PackageReport(out, list(entries), out.stat().st_size)


def file_digest(path: Path) -> tuple[int | None, str | None]:
    """(size, sha256 hex) of a file, or (None, None) when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None, None
    return path.stat().st_size, digest.hexdigest()


def deploy_app(az: AzCli, name: str, resource_group: str, package: Path) -> None:
    """Set the startup command, then ZIP-deploy the package (Oryx builds it on the server)."""
    if not package.is_file():
        raise DeployError(f"{package} not found: build it first with `paletai deploy package`")
    az.run(
        "webapp",
        "config",
        "set",
        "--name",
        name,
        "--resource-group",
        resource_group,
        "--startup-file",
        STARTUP_COMMAND,
    )
    az.run(
        "webapp",
        "deployment",
        "source",
        "config-zip",
        "--name",
        name,
        "--resource-group",
        resource_group,
        "--src",
        str(package),
    )


# --- Phase 7 and the rollback: stop or start an app ------------------------------------------


def set_app_state(
    az: AzCli, name: str, resource_group: str, action: Literal["stop", "start"]
) -> str:
    """`az webapp stop|start`, then the state App Service reports (Running, Stopped)."""
    az.run("webapp", action, "--name", name, "--resource-group", resource_group)
    state = az.run(
        "webapp", "show", "--name", name, "--resource-group", resource_group, "--query", "state"
    )
    return str(state) if state is not None else "unknown"
