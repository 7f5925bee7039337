"""`paletai deploy domain add` against the fake `az`, a local DNS server and a local /health."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paletai.ops.azure.deploy_cli import deploy_app
from paletai.ops.checks import dns as migrate_dns
from paletai.ops.checks import names
from tests.fixtures.dns_server import LocalDns, local_dns
from tests.fixtures.fake_az import FakeAz

runner = CliRunner()

HOST = "api.paletai.test"
APP = "paletai-abc123"
TARGET = f"{APP}.azurewebsites.net"
RG = "rg-paletai-prod"
THUMBPRINT = "9A8B7C6D5E4F30211203A4B5C6D7E8F901234567"
REFUSED = (
    "ERROR: (BadRequest) A CNAME record pointing from api.paletai.test to "
    "paletai-abc123.azurewebsites.net was not found. Alternative record "
    "awverify.api.paletai.test to awverify.paletai-abc123.azurewebsites.net was not found either."
)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "healthy", "database": "healthy", "api": "healthy"}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def health_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def dns_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalDns]:
    """HOST has its CNAME to the app; every name resolves to loopback (nothing leaves here)."""
    real = socket.getaddrinfo
    monkeypatch.setattr(
        migrate_dns.socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1", *a, **k)
    )
    with local_dns({HOST: TARGET}) as server:
        yield server


def answer_like_azure(fake_az: FakeAz) -> None:
    fake_az.respond("webapp show", TARGET)  # --query defaultHostName
    fake_az.respond("webapp config hostname add", {"name": HOST, "hostNameType": "Verified"})
    fake_az.respond(
        "webapp config ssl create",
        {"thumbprint": THUMBPRINT, "subjectName": HOST, "expirationDate": "2027-06-01T00:00:00"},
    )
    fake_az.respond("webapp config ssl bind", [{"name": HOST, "sslState": "SniEnabled"}])


def add(tmp_path: Path, *extra: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "deploy-domain.json"
    result = runner.invoke(
        deploy_app,
        ["domain", "add", HOST, "--app", APP, "-g", RG, *extra, "--json", str(out)],
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    return result.exit_code, result.output, report


def test_hostname_then_certificate_then_binding_then_the_dns_check(
    fake_az: FakeAz, tmp_path: Path, dns_server: LocalDns, health_port: int
) -> None:
    answer_like_azure(fake_az)
    code, output, report = add(
        tmp_path,
        "--resolver",
        dns_server.address,
        "--insecure-http",
        "--port",
        str(health_port),
    )
    assert code == 0, output
    argvs = fake_az.argvs()
    assert [" ".join(a[:4]) for a in argvs] == [
        f"webapp show --name {APP}",
        "webapp config hostname add",
        "webapp config ssl create",
        "webapp config ssl bind",
    ]
    assert argvs[1][4:10] == ["--webapp-name", APP, "--resource-group", RG, "--hostname", HOST]
    assert argvs[2][4:] == ["--name", APP, "--resource-group", RG, "--hostname", HOST] + [
        "--output",
        "json",
    ]
    bind = argvs[3]
    assert bind[bind.index("--certificate-thumbprint") + 1] == THUMBPRINT
    assert bind[bind.index("--ssl-type") + 1] == "SNI"
    assert bind[bind.index("--hostname") + 1] == HOST
    assert report["command"] == "deploy domain add"
    assert report["thumbprint"] == THUMBPRINT
    assert report["default_host_name"] == TARGET
    assert [c["name"] for c in report["checks"]] == [
        names.DOMAIN_HOSTNAME,
        names.DOMAIN_CERTIFICATE,
        names.DOMAIN_BINDING,
        names.DNS_RESOLVE,
        names.DNS_POINTS_AT_TARGET,
        names.DNS_TTL,
        names.HTTP_ANSWERS_ON_HOST,
    ]
    assert all(c["ok"] for c in report["checks"])
    assert report["cname_chain"] == [HOST, TARGET]
    assert (HOST, "CNAME") in dns_server.asked


def test_a_refused_hostname_says_which_record_to_create(fake_az: FakeAz, tmp_path: Path) -> None:
    answer_like_azure(fake_az)
    fake_az.respond("webapp config hostname add", exit_code=1, stderr=REFUSED)
    code, output, report = add(tmp_path)
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(
        f"error: Azure refused {HOST} for {APP}: create the DNS record `{HOST} CNAME {TARGET}`"
    )
    assert "Traceback" not in output
    assert fake_az.calls_of("webapp config ssl create") == []
    assert report == {}


def test_a_failed_certificate_stops_before_the_binding(fake_az: FakeAz, tmp_path: Path) -> None:
    answer_like_azure(fake_az)
    fake_az.respond(
        "webapp config ssl create",
        exit_code=1,
        stderr="ERROR: (BadRequest) Managed certificates are not supported on the Free tier.",
    )
    code, output, report = add(tmp_path)
    assert code == 1
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        (names.DOMAIN_HOSTNAME, True),
        (names.DOMAIN_CERTIFICATE, False),
    ]
    assert "not supported on the Free tier" in report["checks"][1]["detail"]
    assert fake_az.calls_of("webapp config ssl bind") == []


def test_dry_run_prints_the_four_lines_and_runs_nothing(fake_az: FakeAz, tmp_path: Path) -> None:
    result = runner.invoke(deploy_app, ["domain", "add", HOST, "--app", APP, "-g", RG, "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split(" --")[0] for line in lines] == [
        "az webapp show",
        "az webapp config hostname add",
        "az webapp config ssl create",
        "az webapp config ssl bind",
    ]
    assert "--certificate-thumbprint THUMBPRINT_FROM_SSL_CREATE" in lines[3]
    assert fake_az.argvs() == []


def test_not_signed_in_is_one_line(fake_az: FakeAz, tmp_path: Path) -> None:
    fake_az.respond(
        "webapp show", exit_code=1, stderr="ERROR: Please run 'az login' to setup account."
    )
    code, output, _ = add(tmp_path)
    assert code == 1
    assert output.strip().startswith("error: az is not signed in; run `az login")
    assert len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["https://api.paletai.com/"], "is not a host name"),
        (["api.paletai.com", "--resolver", "ns.example.net"], "--resolver takes IP or IP:PORT"),
    ],
)
def test_bad_input_is_a_usage_error(fake_az: FakeAz, args: list[str], message: str) -> None:
    result = runner.invoke(deploy_app, ["domain", "add", *args, "--app", APP, "-g", RG])
    assert result.exit_code == 2
    assert message in result.output
    assert fake_az.argvs() == []
