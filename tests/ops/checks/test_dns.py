"""`paletai migrate dns` (Phase 5): resolution only on loopback names, HTTP only to loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paletai.ops.checks import dns as migrate_dns
from paletai.ops.checks.cli import migrate_app
from tests.fixtures.dns_server import LocalDns, local_dns
from tests.process_helpers import ServerProcess

runner = CliRunner()


@pytest.fixture
def dns_server() -> Iterator[LocalDns]:
    with local_dns() as server:
        yield server


@pytest.fixture(autouse=True)
def queries_stay_local(monkeypatch: pytest.MonkeyPatch, dns_server: LocalDns) -> None:
    """CNAME queries without --resolver go to the local server, never leave the machine."""
    real = migrate_dns.cname_chain
    monkeypatch.setattr(
        migrate_dns, "cname_chain", lambda host, ns: real(host, ns or dns_server.address)
    )


def run_dns(tmp_path: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    out = tmp_path / "dns.json"
    result = runner.invoke(migrate_app, ["dns", *args, "--json", str(out)])
    report = json.loads(out.read_text()) if out.exists() else {}
    return result.exit_code, result.output, report


def test_localhost_points_at_127_0_0_1_and_the_app_answers(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_dns(
        tmp_path,
        "localhost",
        "--expect",
        "127.0.0.1",
        "--insecure-http",
        "--port",
        str(paletai_server.port),
        "--expect-version",
        "0.1.0",
    )
    assert code == 0, output
    assert [c["ok"] for c in report["checks"]] == [True, True, True]
    assert "127.0.0.1" in report["host_addresses"]
    assert report["url"] == f"http://localhost:{paletai_server.port}/health"
    assert "version 0.1.0" in report["checks"][2]["detail"]
    assert "no CNAME to it: compared addresses" in output
    assert report["cname_chain"] == ["localhost"]
    assert "ttl" not in report
    assert report["note"] == "no TTL read for localhost: its resolver gave no CNAME or A record"


def test_a_host_that_points_elsewhere_fails(tmp_path: Path) -> None:
    # 127.0.0.2 is only resolved (an IP literal), never contacted.
    code, output, report = run_dns(
        tmp_path, "localhost", "--expect", "127.0.0.2", "--insecure-http", "--port", "9"
    )
    assert code == 1
    points = report["checks"][1]
    assert points["name"] == "dns: points at target"
    assert not points["ok"]
    assert "does not point at 127.0.0.2" in points["detail"]


def test_the_old_app_answering_fails_the_version_check(
    paletai_server: ServerProcess, tmp_path: Path
) -> None:
    code, output, report = run_dns(
        tmp_path,
        "localhost",
        "--expect",
        "127.0.0.1",
        "--insecure-http",
        "--port",
        str(paletai_server.port),
        "--expect-version",
        "9.9.9",
    )
    assert code == 1
    http = report["checks"][2]
    assert not http["ok"]
    assert "answered version '0.1.0', expected '9.9.9'" in http["detail"]


def test_an_unresolvable_host_fails_at_resolution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(migrate_dns.socket, "getaddrinfo", fail)
    code, output, report = run_dns(tmp_path, "api.paletai.test", "--expect", "new.example.test")
    assert code == 1
    assert [c["name"] for c in report["checks"]] == ["dns: resolve host"]
    assert "cannot resolve api.paletai.test: Name or service not known" in output


def test_the_cname_chain_is_read_from_the_nameserver_given(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    paletai_server: ServerProcess,
    dns_server: LocalDns,
) -> None:
    """api.paletai.test -> new-app.azurewebsites.net., served by a real (local) DNS server."""
    dns_server.records["api.paletai.test"] = "new-app.azurewebsites.net."
    real = socket.getaddrinfo
    monkeypatch.setattr(
        migrate_dns.socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1", *a, **k)
    )
    code, output, report = run_dns(
        tmp_path,
        "api.paletai.test",
        "--expect",
        "NEW-APP.azurewebsites.net",
        "--resolver",
        dns_server.address,
        "--insecure-http",
        "--port",
        str(paletai_server.port),
    )
    assert code == 0, output
    assert report["checks"][1]["ok"]
    assert report["checks"][1]["detail"] == ("CNAME api.paletai.test -> new-app.azurewebsites.net")
    assert report["cname_chain"] == ["api.paletai.test", "new-app.azurewebsites.net"]
    assert dns_server.asked[0] == ("api.paletai.test", "CNAME")
    assert report["ttl"] == 300
    assert report["checks"][2]["name"] == "dns: TTL lowered"
    assert report["checks"][2]["ok"]


def test_a_ttl_above_the_lowered_one_fails_and_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dns_server: LocalDns
) -> None:
    dns_server.records["api.paletai.test"] = "new-app.azurewebsites.net."
    dns_server.ttls["api.paletai.test"] = 3600
    real = socket.getaddrinfo
    monkeypatch.setattr(
        migrate_dns.socket, "getaddrinfo", lambda host, *a, **k: real("127.0.0.1", *a, **k)
    )
    args = ["api.paletai.test", "--expect", "new-app.azurewebsites.net"]
    args += ["--resolver", dns_server.address, "--insecure-http", "--port", "9"]
    code, output, report = run_dns(tmp_path, *args)
    assert code == 1
    ttl = next(c for c in report["checks"] if c["name"] == "dns: TTL lowered")
    assert not ttl["ok"]
    assert (
        "TTL 3600 s at this resolver, above 300 s: lower the record's TTL to 300" in ttl["detail"]
    )
    assert report["ttl"] == 3600
    # --max-ttl moves the bar (a zone that keeps 3600 on purpose).
    code, _, report = run_dns(tmp_path, *args, "--max-ttl", "3600")
    ttl = next(c for c in report["checks"] if c["name"] == "dns: TTL lowered")
    assert ttl["ok"]


@pytest.mark.parametrize("resolver", ["dns.example.net", "127.0.0.1:99999", "[::1"])
def test_a_resolver_that_is_not_an_address_is_a_usage_error(tmp_path: Path, resolver: str) -> None:
    code, output, _ = run_dns(tmp_path, "api.paletai.test", "--expect", "x", "--resolver", resolver)
    assert code == 2
    assert "--resolver takes IP or IP:PORT" in output
