"""The checklist's Phase 5 "Verify DNS Propagation": does HOST point at the new app, and does the
new app answer there (with a working certificate)?

The CNAME is read with dnspython when it is importable (it is not a dependency); otherwise HOST
and TARGET are resolved to addresses with the system resolver and the address sets compared.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx

from paletai.ops.checks import names
from paletai.ops.checks.api import USER_AGENT, json_object, transport_error_message
from paletai.ops.checks.phase4 import Aborted, CheckFailed, CheckReport, run_step

MAX_CNAME_HOPS = 10


@dataclass
class DnsOptions:
    host: str
    expect: str
    url_path: str = "/health"
    resolver: str | None = None
    insecure_http: bool = False
    port: int | None = None
    expect_version: str | None = None
    timeout: float = 10.0


def _dnspython() -> Any | None:
    """dns.resolver if dnspython is installed, else None."""
    try:
        return importlib.import_module("dns.resolver")
    except ImportError:
        return None


def resolve_addresses(host: str) -> set[str]:
    """Every address the system resolver gives for `host` (an IP literal gives itself)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise CheckFailed(f"cannot resolve {host}: {exc.strerror}") from None
    return {str(info[4][0]) for info in infos}


def _bare(name: str) -> str:
    return name.strip().rstrip(".").lower()


def cname_chain(host: str, nameserver: str | None) -> list[str] | None:
    """HOST's CNAME chain ([host, alias, ...]) via dnspython; None without dnspython."""
    resolver_module = _dnspython()
    if resolver_module is None:
        return None
    resolver = resolver_module.Resolver(configure=nameserver is None)
    if nameserver:
        resolver.nameservers = [nameserver]
    chain = [_bare(host)]
    for _ in range(MAX_CNAME_HOPS):
        try:
            answer = resolver.resolve(chain[-1], "CNAME")
        except Exception:  # noqa: BLE001 - NXDOMAIN / NoAnswer: the chain ends here
            break
        chain.append(_bare(str(answer[0].target)))
    return chain


async def run_dns(options: DnsOptions, report: CheckReport) -> CheckReport:
    """Phase 5 for `options.host`; checks go into `report`. The resolver blocks, so each step
    runs in a thread."""
    started = time.perf_counter()
    host, target = _bare(options.host), _bare(options.expect)
    found: dict[str, set[str]] = {}

    def resolve_host() -> str:
        found["host"] = resolve_addresses(host)
        return f"{host} -> {', '.join(sorted(found['host']))}"

    def points_at_target() -> str:
        chain = cname_chain(host, options.resolver)
        if chain is not None:
            report.extra["cname_chain"] = chain
            if target in chain[1:]:
                return "CNAME " + " -> ".join(chain)
        elif options.resolver:
            report.extra["note"] = "--resolver needs dnspython; used the system resolver"
        target_addresses = resolve_addresses(target)
        shared = found["host"] & target_addresses
        report.extra.update(
            host_addresses=sorted(found["host"]), target_addresses=sorted(target_addresses)
        )
        how = "no dnspython: compared addresses" if chain is None else "compared addresses"
        if not shared:
            raise CheckFailed(
                f"{host} ({', '.join(sorted(found['host']))}) does not point at {target} "
                f"({', '.join(sorted(target_addresses))}); {how}"
                + (f"; CNAME chain {' -> '.join(chain)}" if chain and len(chain) > 1 else "")
            )
        return f"{host} and {target} share {', '.join(sorted(shared))} ({how})"

    def http_answers() -> str:
        scheme = "http" if options.insecure_http else "https"
        netloc = host if options.port is None else f"{host}:{options.port}"
        url = f"{scheme}://{netloc}/{options.url_path.lstrip('/')}"
        report.extra["url"] = url
        try:
            response = httpx.get(url, timeout=options.timeout, headers={"User-Agent": USER_AGENT})
        except httpx.HTTPError as exc:
            raise CheckFailed(transport_error_message(exc, url)) from None
        if response.status_code != 200:
            raise CheckFailed(f"GET {url} answered {response.status_code}")
        detail = f"GET {url}: 200" + ("" if options.insecure_http else ", certificate valid")
        if options.expect_version is None:
            return detail
        version = json_object("GET", url, response).get("version")
        if str(version) != options.expect_version:
            raise CheckFailed(
                f"GET {url} answered version {version!r}, expected {options.expect_version!r} "
                "(still the old app, or the DNS change has not reached this resolver)"
            )
        return f"{detail}, version {version}"

    try:
        await run_step(
            report, names.DNS_RESOLVE, lambda: asyncio.to_thread(resolve_host), fatal=True
        )
        await run_step(
            report, names.DNS_POINTS_AT_TARGET, lambda: asyncio.to_thread(points_at_target)
        )
        await run_step(report, names.HTTP_ANSWERS_ON_HOST, lambda: asyncio.to_thread(http_answers))
    except Aborted:
        pass
    report.seconds = time.perf_counter() - started
    return report
