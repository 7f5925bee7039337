"""`paletai migrate preflight`: az flows against the fake az, MongoDB against the embedded
server, the AI SDKs and OneSignal over real HTTP against a local server, storage against Azurite.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from paletai.config import Settings
from paletai.db.embedded import free_port
from paletai.ops.checks import names
from paletai.ops.checks.cli import migrate_app
from paletai.ops.checks.phase4 import CheckReport
from paletai.ops.checks.preflight import (
    PreflightOptions,
    is_cosmos,
    privileged_assignments,
    run_preflight,
)
from paletai.ops.results import MigratePreflightResult, parse_result
from tests.fixtures.cloud import DEV_KEY, NEW_ACCOUNT, Azurite
from tests.fixtures.fake_az import FakeAz

runner = CliRunner()

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "99999999-9999-9999-9999-999999999999"
SUB = "22222222-2222-2222-2222-222222222222"
USER = "ops@contoso.example"
APP_ID = "33333333-3333-3333-3333-333333333333"

GOOD = {
    "openai": "sk-good-openai-0123456789abcdef",
    "azure": "azure-good-key-0123456789abcdef",
    "anthropic": "sk-ant-good-0123456789abcdef",
    "onesignal": "os-good-rest-key-0123456789abcdef",
}
BAD = {name: key.replace("good", "bad") for name, key in GOOD.items()}
ONESIGNAL_APP = "4f1c2d3e-0000-4000-8000-000000000001"
DB_PASSWORD = "Pr3flight-db-pass"


# ---------------------------------------------------------------------------------------------
# A local API server: OpenAI's, Azure OpenAI's and Anthropic's model lists, OneSignal's messages


@dataclass
class FakeApis:
    base_url: str = ""
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _handler(fake: FakeApis) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            fake.seen.append((url.path, headers))
            denied = {"error": {"type": "authentication_error", "message": "invalid key"}}
            if url.path == "/v1/models" and "anthropic-version" in headers:  # Anthropic
                # The SDK sends the key as x-api-key (older) or as a bearer token (2.x).
                bearer = headers.get("authorization", "").removeprefix("Bearer ")
                if headers.get("x-api-key", bearer) != GOOD["anthropic"]:
                    return self._answer(401, {"type": "error", **denied})
                model = {
                    "id": "claude-sonnet-4-5",
                    "type": "model",
                    "display_name": "Claude Sonnet 4.5",
                    "created_at": "2025-09-29T00:00:00Z",
                }
                return self._answer(
                    200,
                    {"data": [model], "has_more": False, "first_id": "a", "last_id": "a"},
                )
            if url.path == "/v1/models":  # OpenAI
                if headers.get("authorization") != f"Bearer {GOOD['openai']}":
                    return self._answer(401, denied)
                return self._answer(200, _openai_models("gpt-4o", "gpt-4o-mini"))
            if url.path == "/openai/models":  # Azure OpenAI
                if headers.get("api-key") != GOOD["azure"]:
                    return self._answer(401, denied)
                return self._answer(200, _openai_models("gpt-4o"))
            if url.path == "/notifications":  # OneSignal, View messages
                query = parse_qs(url.query)
                if headers.get("authorization") != f"Key {GOOD['onesignal']}":
                    return self._answer(403, {"errors": ["Access denied."]})
                if query.get("app_id") != [ONESIGNAL_APP]:
                    return self._answer(400, {"errors": ["app_id not found"]})
                return self._answer(
                    200, {"total_count": 0, "offset": 0, "limit": 1, "notifications": []}
                )
            return self._answer(404, {"error": "no such path"})

    return Handler


def _openai_models(*ids: str) -> dict[str, Any]:
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "system"} for i in ids]
    return {"object": "list", "data": data}


@pytest.fixture
def apis() -> Iterator[FakeApis]:
    fake = FakeApis()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------------------------------------
# Helpers


def settings(**values: Any) -> Settings:
    """Only these values: no .env, and none of the keys of the machine's environment."""
    base: dict[str, Any] = {
        "DB_PATH": None,
        "AI_PROVIDER": None,
        "OPENAI_API_KEY": None,
        "AZURE_OPENAI_ENDPOINT": None,
        "AZURE_OPENAI_API_KEY": None,
        "ANTHROPIC_API_KEY": None,
        "ONESIGNAL_APP_ID": None,
        "ONESIGNAL_REST_API_KEY": None,
        "AZURE_STORAGE_CONNECTION_STRING": None,
        "AZURE_STORAGE_ACCOUNT_URL": None,
        "IS_LOCAL_ENV": False,
    }
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[call-arg]


def ai_settings(apis: FakeApis, keys: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "OPENAI_API_KEY": keys["openai"],
        "OPENAI_BASE_URL": f"{apis.base_url}/v1",
        "AZURE_OPENAI_ENDPOINT": apis.base_url,
        "AZURE_OPENAI_API_KEY": keys["azure"],
        "ANTHROPIC_API_KEY": keys["anthropic"],
        "ANTHROPIC_BASE_URL": apis.base_url,
        "ONESIGNAL_APP_ID": ONESIGNAL_APP,
        "ONESIGNAL_REST_API_KEY": keys["onesignal"],
        "ONESIGNAL_API_URL": apis.base_url,
        **extra,
    }


async def preflight(options: PreflightOptions) -> CheckReport:
    return await run_preflight(options, CheckReport("migrate preflight", "test"))


def checks(report: CheckReport) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in report.checks}


def account(tenant: str = TENANT, *, user: str = USER, kind: str = "user") -> dict[str, Any]:
    return {
        "id": SUB,
        "name": "PaletAI Production",
        "state": "Enabled",
        "tenantId": tenant,
        "isDefault": True,
        "user": {"name": user, "type": kind},
    }


def subscriptions(tenant: str = TENANT) -> list[dict[str, Any]]:
    other = {**account(tenant), "id": "44444444-4444-4444-4444-444444444444", "name": "Dev"}
    return [other, account(tenant)]


def assignment(role: str, scope: str = f"/subscriptions/{SUB}", **extra: str) -> dict[str, str]:
    return {
        "roleDefinitionName": role,
        "scope": scope,
        "principalName": USER,
        "principalType": "User",
        **extra,
    }


def az_all_good(fake_az: FakeAz, **account_kw: Any) -> None:
    fake_az.respond("account show", account(**account_kw))
    fake_az.respond("account list", subscriptions())
    fake_az.respond("role assignment list", [assignment("Reader"), assignment("Contributor")])


def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("REGION_NAME", raising=False)
    result = runner.invoke(migrate_app, ["preflight", *args])
    return result.exit_code, result.output


def line(output: str, name: str) -> str:
    found = [text for text in output.splitlines() if f" {name} " in text]
    assert found, f"no line for {name!r} in:\n{output}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# Azure, through the fake az


AZ = ["--tenant", TENANT, "--subscription", SUB, "--mongodb-uri"]


def test_azure_all_good(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    az_all_good(fake_az)
    out = tmp_path / "results" / "preflight.json"
    code, output = run_cli(
        tmp_path, monkeypatch, *AZ, mongo_uri, "--db", "pf", "--timeout", "5", "--json", str(out)
    )
    assert code == 0, output
    assert line(output, names.PREFLIGHT_AZ_SIGNED_IN).startswith("PASS")
    assert f"as {USER} (user)" in line(output, names.PREFLIGHT_AZ_SIGNED_IN)
    assert line(output, names.PREFLIGHT_AZ_TENANT).startswith("PASS")
    assert "PaletAI Production" in line(output, names.PREFLIGHT_AZ_SUBSCRIPTION)
    assert f"Contributor at /subscriptions/{SUB}" in line(output, names.PREFLIGHT_AZ_ROLE)
    (role_call,) = fake_az.calls_of("role assignment list")
    assert role_call[role_call.index("--assignee") + 1] == USER
    assert role_call[role_call.index("--scope") + 1] == f"/subscriptions/{SUB}"
    assert "--include-inherited" in role_call
    assert "--include-groups" in role_call
    data = json.loads(out.read_text())
    result = parse_result(data)
    assert isinstance(result, MigratePreflightResult)
    assert (result.ok, result.tenant, result.subscription) == (True, TENANT, SUB)
    assert (result.account, result.account_type) == (USER, "user")


def test_not_signed_in_says_az_login_with_the_tenant(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    fake_az.respond(
        "account show", exit_code=1, stderr="ERROR: Please run 'az login' to setup account."
    )
    code, output = run_cli(tmp_path, monkeypatch, *AZ, mongo_uri)
    assert code == 1
    signed_in = line(output, names.PREFLIGHT_AZ_SIGNED_IN)
    assert signed_in.startswith("FAIL")
    assert f"az is not signed in: run `az login --tenant {TENANT}`" in signed_in
    assert fake_az.calls_of("role assignment list") == []  # nothing more asked of az
    assert f" {names.PREFLIGHT_AZ_ROLE} " not in output
    assert "Traceback" not in output


def test_wrong_tenant(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    az_all_good(fake_az, tenant=OTHER_TENANT)
    # Only --tenant: the signed-in account's own tenant is compared.
    code, output = run_cli(tmp_path, monkeypatch, "--tenant", TENANT, "--mongodb-uri", mongo_uri)
    assert code == 1
    tenant = line(output, names.PREFLIGHT_AZ_TENANT)
    assert tenant.startswith("FAIL")
    assert f"signed in to tenant {OTHER_TENANT}, not {TENANT}" in tenant
    assert f"az login --tenant {TENANT}" in tenant
    # With --subscription: the subscription's tenant is compared.
    fake_az.respond("account list", subscriptions(OTHER_TENANT))
    code, output = run_cli(tmp_path, monkeypatch, *AZ, mongo_uri)
    assert code == 1
    assert f"{SUB} is in tenant {OTHER_TENANT}, not --tenant {TENANT}" in output


def test_missing_role_names_what_is_held_and_how_to_grant(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    az_all_good(fake_az)
    rg_scope = f"/subscriptions/{SUB}/resourceGroups/rg-paletai-prod"
    fake_az.respond(
        "role assignment list", [assignment("Reader"), assignment("Contributor", rg_scope)]
    )
    code, output = run_cli(tmp_path, monkeypatch, *AZ, mongo_uri)
    assert code == 1
    role = line(output, names.PREFLIGHT_AZ_ROLE)
    assert role.startswith("FAIL")
    assert "neither Contributor nor Owner" in role
    assert "holds: Contributor, Reader" in role
    assert f"az role assignment create --assignee {USER} --role Contributor" in role


def test_owner_through_a_group_or_a_management_group_counts() -> None:
    scope = f"/subscriptions/{SUB}"
    rows = [
        assignment("Owner", "/providers/Microsoft.Management/managementGroups/mg1"),
        assignment("Contributor", scope, principalType="Group", principalName="ops-team"),
        assignment("Owner", f"{scope}/resourceGroups/rg"),
    ]
    assert privileged_assignments(rows, scope) == [
        "Owner at /providers/Microsoft.Management/managementGroups/mg1",
        f"Contributor at {scope} via group ops-team",
    ]


def test_subscription_not_found(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    az_all_good(fake_az)
    missing = "55555555-5555-5555-5555-555555555555"
    code, output = run_cli(
        tmp_path, monkeypatch, "--tenant", TENANT, "--subscription", missing,
        "--mongodb-uri", mongo_uri,
    )  # fmt: skip
    assert code == 1
    visible = line(output, names.PREFLIGHT_AZ_SUBSCRIPTION)
    assert visible.startswith("FAIL")
    assert f"subscription {missing} not found: {USER} sees 2 other subscription(s)" in visible
    assert fake_az.calls_of("role assignment list") == []


def test_a_service_principal_login_works(
    fake_az: FakeAz, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    az_all_good(fake_az, user=APP_ID, kind="servicePrincipal")
    fake_az.respond(
        "role assignment list",
        [assignment("Owner", principalName=APP_ID, principalType="ServicePrincipal")],
    )
    code, output = run_cli(tmp_path, monkeypatch, *AZ, mongo_uri)
    assert code == 0, output
    assert f"as {APP_ID} (servicePrincipal)" in output
    (role_call,) = fake_az.calls_of("role assignment list")
    assert role_call[role_call.index("--assignee") + 1] == APP_ID
    assert "--include-groups" not in role_call  # az takes it for users only


# ---------------------------------------------------------------------------------------------
# MongoDB, on the embedded server


async def test_mongodb_connects_and_change_streams_open(mongo_uri: str, db_name: str) -> None:
    options = PreflightOptions(settings(), mongodb_uri=mongo_uri, db_name=db_name, timeout=5)
    report = await preflight(options)
    found = checks(report)
    ok, detail = found[names.PREFLIGHT_MONGODB]
    assert ok, detail
    assert f"MongoDB 7.0.0; database {db_name}" in detail
    ok, detail = found[names.PREFLIGHT_CHANGE_STREAMS]
    assert ok, detail
    assert "`db sync` possible" in detail
    assert report.extra["change_streams"] is True
    assert report.extra["mongodb_version"] == "7.0.0"
    assert report.extra["cosmos_db"] is False


async def test_the_uri_defaults_to_db_path(mongo_uri: str) -> None:
    report = await preflight(PreflightOptions(settings(DB_PATH=mongo_uri), timeout=5))
    assert checks(report)[names.PREFLIGHT_MONGODB][0]
    report = await preflight(PreflightOptions(settings(), timeout=5))
    assert checks(report)[names.PREFLIGHT_MONGODB] == (
        False,
        "no MongoDB URI: pass --mongodb-uri or set DB_PATH to the database to migrate",
    )


async def test_an_unreachable_mongodb_fails_with_one_clear_line() -> None:
    uri = f"mongodb://paletai:{DB_PASSWORD}@127.0.0.1:{free_port()}/paletai"
    options = PreflightOptions(settings(), mongodb_uri=uri, timeout=0.5)
    # The password is masked wherever it shows; the user name (here the database's) is not.
    assert DB_PASSWORD in options.secrets()
    assert "paletai" not in options.secrets()
    report = await preflight(options)
    ok, detail = checks(report)[names.PREFLIGHT_MONGODB]
    assert not ok
    assert detail.startswith("cannot reach the given MongoDB at 127.0.0.1:")
    assert DB_PASSWORD not in detail
    assert names.PREFLIGHT_CHANGE_STREAMS not in checks(report)


async def test_a_cosmos_db_host_gets_the_delete_events_warning() -> None:
    assert is_cosmos("mongodb://a:b@paletai.mongo.cosmos.azure.com:10255/?ssl=true")
    assert is_cosmos("mongodb+srv://a:b@c.mongocluster.cosmos.azure.com/?tls=true")
    assert not is_cosmos("mongodb+srv://a:b@cluster0.abcde.mongodb.net/")
    # 127.0.0.1 listed with a Cosmos host: the warning comes from the URI, before any answer.
    uri = f"mongodb://u:p@127.0.0.1:{free_port()},x.mongo.cosmos.azure.com:10255/?replicaSet=rs"
    report = await preflight(PreflightOptions(settings(), mongodb_uri=uri, timeout=0.3))
    assert report.extra["cosmos_db"] is True
    (warning,) = report.extra["warnings"]
    assert "emit no delete events" in warning
    assert "reconciles _id sets" in warning


# ---------------------------------------------------------------------------------------------
# AI keys and OneSignal, through the official SDKs over real HTTP


async def test_ai_keys_and_onesignal_accepted(apis: FakeApis) -> None:
    values = ai_settings(apis, GOOD, AI_PROVIDER="anthropic")
    report = await preflight(PreflightOptions(settings(**values), timeout=5))
    found = checks(report)
    for provider in ("openai", "azure-openai", "anthropic"):
        ok, detail = found[names.PREFLIGHT_AI_KEY + provider]
        assert ok, detail
        assert "key accepted by 127.0.0.1:" in detail
    assert "OPENAI_MODEL gpt-4o is listed" in found[names.PREFLIGHT_AI_KEY + "openai"][1]
    anthropic = found[names.PREFLIGHT_AI_KEY + "anthropic"][1]
    assert "ANTHROPIC_MODEL claude-sonnet-4-5 is listed (the AI_PROVIDER in force)" in anthropic
    ok, detail = found[names.PREFLIGHT_ONESIGNAL]
    assert ok, detail
    # The SDKs really sent each key the way their service expects it.
    paths = {path for path, _ in apis.seen}
    assert paths == {"/v1/models", "/openai/models", "/notifications"}


async def test_refused_keys_fail_and_say_which_setting(apis: FakeApis) -> None:
    report = await preflight(PreflightOptions(settings(**ai_settings(apis, BAD)), timeout=5))
    found = checks(report)
    for provider, setting in (
        ("openai", "OPENAI_API_KEY"),
        ("azure-openai", "AZURE_OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
    ):
        ok, detail = found[names.PREFLIGHT_AI_KEY + provider]
        assert not ok
        assert f"refused the key (HTTP 401): set {setting} to a valid key" in detail
    ok, detail = found[names.PREFLIGHT_ONESIGNAL]
    assert not ok
    assert "refused the REST API key" in detail
    assert "HTTP 403" in detail
    assert not report.ok


async def test_unconfigured_providers_fail_only_when_selected() -> None:
    report = await preflight(PreflightOptions(settings(), timeout=1))
    found = checks(report)
    assert found[names.PREFLIGHT_AI_KEY + "openai"] == (
        True,
        "not configured (OPENAI_API_KEY unset)",
    )
    assert found[names.PREFLIGHT_ONESIGNAL] == (True, "not configured: push sends are skipped")
    report = await preflight(PreflightOptions(settings(AI_PROVIDER="openai"), timeout=1))
    assert checks(report)[names.PREFLIGHT_AI_KEY + "openai"] == (
        False,
        "not configured (OPENAI_API_KEY unset) but AI_PROVIDER=openai",
    )


async def test_an_ai_endpoint_that_refuses_connections_fails_with_one_line() -> None:
    values = {
        "OPENAI_API_KEY": GOOD["openai"],
        "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
    }
    report = await preflight(PreflightOptions(settings(**values), timeout=1))
    ok, detail = checks(report)[names.PREFLIGHT_AI_KEY + "openai"]
    assert not ok
    assert "cannot connect to 127.0.0.1:" in detail
    assert "check OPENAI_BASE_URL" in detail


# ---------------------------------------------------------------------------------------------
# Storage, on Azurite


async def test_storage_account_answers(azurite: str, container_name: str) -> None:
    values = {"AZURE_STORAGE_CONNECTION_STRING": azurite, "AZURE_STORAGE_CONTAINER": container_name}
    report = await preflight(PreflightOptions(settings(**values), timeout=5))
    ok, detail = checks(report)[names.PREFLIGHT_STORAGE]
    assert ok, detail
    assert "account devstoreaccount1 answers" in detail
    assert f"container {container_name} does not exist" in detail


async def test_storage_with_a_wrong_key_fails(azurite_server: Azurite) -> None:
    wrong = azurite_server.connection_string(NEW_ACCOUNT).replace(
        azurite_server.connection_string(NEW_ACCOUNT).split("AccountKey=")[1].split(";")[0],
        DEV_KEY,
    )
    report = await preflight(
        PreflightOptions(settings(AZURE_STORAGE_CONNECTION_STRING=wrong), timeout=5)
    )
    ok, detail = checks(report)[names.PREFLIGHT_STORAGE]
    assert not ok
    assert f"storage account {NEW_ACCOUNT} refused the key (HTTP 403" in detail
    assert DEV_KEY not in detail


# ---------------------------------------------------------------------------------------------
# Secrets


def test_no_secret_in_the_output_or_the_json(
    fake_az: FakeAz,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    apis: FakeApis,
    azurite_server: Azurite,
) -> None:
    az_all_good(fake_az)
    storage = azurite_server.connection_string(NEW_ACCOUNT).replace(
        azurite_server.connection_string(NEW_ACCOUNT).split("AccountKey=")[1].split(";")[0],
        DEV_KEY,
    )
    db_uri = f"mongodb://paletai:{DB_PASSWORD}@127.0.0.1:{free_port()}/paletai"
    app_settings = [
        {"name": name, "value": value, "slotSetting": False}
        for name, value in {
            **ai_settings(apis, BAD),
            "DB_PATH": db_uri,
            "AZURE_STORAGE_CONNECTION_STRING": storage,
        }.items()
    ]
    settings_file = tmp_path / "old-app-settings.json"
    settings_file.write_text(json.dumps(app_settings))
    out = tmp_path / "preflight.json"
    code, output = run_cli(
        tmp_path, monkeypatch, *AZ[:4], "--settings", str(settings_file), "--timeout", "1",
        "--json", str(out),
    )  # fmt: skip
    assert code == 1
    assert line(output, names.PREFLIGHT_AI_KEY + "openai").startswith("FAIL")
    assert line(output, names.PREFLIGHT_MONGODB).startswith("FAIL")
    assert line(output, names.PREFLIGHT_STORAGE).startswith("FAIL")
    written = out.read_text()
    for secret in (*BAD.values(), DB_PASSWORD, db_uri, storage, DEV_KEY):
        assert secret not in output
        assert secret not in written
    assert "127.0.0.1" in json.loads(written)["mongodb_hosts"]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_cli(tmp_path, monkeypatch, "--mongodb-uri", "postgres://u:pw@h/db")
    assert code == 2
    assert output.strip() == (
        "error: --mongodb-uri is not a MongoDB URI: must start with mongodb:// or mongodb+srv://"
    )
    code, output = run_cli(tmp_path, monkeypatch, "--settings", str(tmp_path / "missing.json"))
    assert code == 2
    assert output.startswith("error: cannot read --settings")
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, output = run_cli(tmp_path, monkeypatch, "--settings", str(tmp_path / "bad.json"))
    assert code == 2
    assert "entry 0 is not" in output
    assert "Traceback" not in output


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that takes connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


async def test_a_server_that_never_answers_fails_within_the_timeout(silent_server: str) -> None:
    values = {
        "OPENAI_API_KEY": GOOD["openai"],
        "OPENAI_BASE_URL": f"{silent_server}/v1",
        "ONESIGNAL_APP_ID": ONESIGNAL_APP,
        "ONESIGNAL_REST_API_KEY": GOOD["onesignal"],
        "ONESIGNAL_API_URL": silent_server,
    }
    report = await preflight(PreflightOptions(settings(**values), timeout=0.5))
    found = checks(report)
    ok, detail = found[names.PREFLIGHT_AI_KEY + "openai"]
    assert not ok
    assert detail.startswith("no answer from 127.0.0.1:")
    assert "within 0.5 s: check OPENAI_BASE_URL" in detail
    ok, detail = found[names.PREFLIGHT_ONESIGNAL]
    assert not ok
    assert "within 0.5 s" in detail
    assert "check ONESIGNAL_API_URL" in detail


def test_az_not_installed_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mongo_uri: str
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, output = run_cli(tmp_path, monkeypatch, *AZ, mongo_uri)
    assert code == 1
    signed_in = line(output, names.PREFLIGHT_AZ_SIGNED_IN)
    assert signed_in.startswith("FAIL")
    assert "the `az` command is not on PATH; install the Azure CLI" in signed_in
    assert line(output, names.PREFLIGHT_MONGODB).startswith("PASS")  # the rest still runs
