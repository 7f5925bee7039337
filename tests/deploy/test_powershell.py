"""deploy/Deploy-PaletAI.ps1, read as text: PowerShell is not installed here, so the script is
not run. It must take the checklist's parameters, call az as the checklist does, and keep the
secrets off az's command line."""

from __future__ import annotations

import re
from pathlib import Path

from paletai.ops.azure import deploy as ops

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "Deploy-PaletAI.ps1"
BICEP = SCRIPT.with_name("main.bicep")

# The checklist's Phase 1 command line.
CHECKLIST_PARAMETERS = [
    "TenantId",
    "SubscriptionId",
    "ResourceGroupName",
    "Location",
    "MongoDbConnectionString",
    "OpenAiApiKey",
    "AiProvider",
]
SECRET_VARIABLES = [
    "MongoDbConnectionString",
    "OpenAiApiKey",
    "JwtSecretKey",
    "AnthropicApiKey",
    "AzureOpenAiApiKey",
    "OneSignalRestApiKey",
]


def _text() -> str:
    return SCRIPT.read_text(encoding="utf-8")


def _param_block(text: str) -> str:
    start = text.index("param(")
    return text[start : text.index("\n)\n", start)]


def _az_commands(text: str) -> list[str]:
    """Each az command, with its backtick-continued lines joined."""
    joined = re.sub(r"\s*`\s*\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if re.search(r"(^|= )az ", line.strip())]


def test_takes_the_checklists_parameters() -> None:
    declared = re.findall(r"\[string\] \$(\w+)", _param_block(_text()))
    for name in CHECKLIST_PARAMETERS:
        assert name in declared, name
    mandatory = re.findall(r"\[Parameter\(Mandatory\)\] \[string\] \$(\w+)", _text())
    assert mandatory == CHECKLIST_PARAMETERS[:5]


def test_calls_az_as_the_checklist_does() -> None:
    commands = _az_commands(_text())
    assert [c.split(" --")[0].removeprefix("$deployment = ") for c in commands] == [
        "az login",
        "az account set",
        "az group create",
        "az deployment group create",
    ]
    login, account, group, deployment = commands
    assert "--tenant $TenantId" in login
    assert "--subscription $SubscriptionId" in account
    assert "--name $ResourceGroupName --location $Location" in group
    assert "--resource-group $ResourceGroupName" in deployment
    assert "'main.bicep'" in deployment
    assert '--parameters "@$secretsFile"' in deployment
    assert '--parameters "@$ParametersFile"' in deployment


def test_secrets_go_through_a_temporary_file_that_is_removed() -> None:
    text = _text()
    for command in _az_commands(text):
        for name in SECRET_VARIABLES:
            assert f"${name}" not in command, f"{name} on az's command line"
    body = text[text.index("$secretsFile = New-TemporaryFile") :]
    assert re.search(r"finally\s*\{\s*Remove-Item -Force -Path \$secretsFile\s*\}", body)
    # Every value written to the file is a parameter of main.bicep; every secret is a secure one.
    written = dict(re.findall(r"(\w+)\s+= @\{ value = \$(\w+) \}", body))
    declared = set(re.findall(r"^param (\w+) ", BICEP.read_text(), re.MULTILINE))
    assert set(written) <= declared
    secret_params = {param for param, var in written.items() if var in SECRET_VARIABLES}
    assert secret_params == set(ops.SECRET_PARAMETERS)
    assert written["dbPath"] == "MongoDbConnectionString"


def test_writes_the_outputs_file() -> None:
    text = _text()
    assert "$deployment.properties.outputs" in text
    assert "Set-Content -Path $OutputsFile" in text
