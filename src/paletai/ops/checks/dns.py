"""The checklist's Phase 5 "Verify DNS Propagation": does HOST point at the new app, and does the
new app answer there (with a working certificate)?

HOST's CNAME chain is read with dnspython (from the system's nameservers, or the one given);
when it does not lead to TARGET (an A record, or a flattened apex), HOST and TARGET are resolved
to addresses with the system resolver and the address sets compared.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass

import dns.exception
import dns.resolver
import httpx

from paletai.ops.checks import names
from paletai.ops.checks.api import USER_AGENT, json_object, transport_error_message
from paletai.ops.checks.phase4 import Aborted, CheckFailed, CheckReport, run_step

MAX_CNAME_HOPS = 10
LOWERED_TTL_SECONDS = 300  # the checklist's "Lowered DNS TTL to 300 seconds"


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
    max_ttl: int = LOWERED_TTL_SECONDS


def parse_nameserver(spec: str) -> tuple[str, int]:
    """`IP`, `IP:PORT` or `[IPv6]:PORT` -> (ip, port); ValueError with what is expected."""
    text, port = spec.strip(), 53
    if text.startswith("["):
        text, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError("no closing ]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif text.count(":") == 1:
        text, _, number = text.partition(":")
        port = int(number)
    ipaddress.ip_address(text)  # a name here would need a resolver to find the resolver
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return text, port


def resolver_problem(spec: str | None) -> str | None:
    """Why `--resolver SPEC` cannot be used (one line for the operator), or None."""
    if spec is None:
        return None
    try:
        parse_nameserver(spec)
    except ValueError as exc:
        return f"--resolver takes IP or IP:PORT ([IPv6]:PORT), got {spec!r} ({exc})"
    return None


def resolve_addresses(host: str) -> set[str]:
    """Every address the system resolver gives for `host` (an IP literal gives itself)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise CheckFailed(f"cannot resolve {host}: {exc.strerror}") from None
    return {str(info[4][0]) for info in infos}


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _bare(name: str) -> str:
    return name.strip().rstrip(".").lower()


def cname_chain(host: str, nameserver: str | None) -> tuple[list[str], int | None]:
    """HOST's CNAME chain ([host, alias, ...]), asking `nameserver` (IP[:PORT]) or the system's
    nameservers; it ends where a name has no CNAME (or cannot be resolved). With it, the TTL
    that resolver gives HOST's own record (its CNAME, else its A record), or None: a caching
    resolver counts a cached record's TTL down, so a TTL at most the lowered one means no
    older, longer one is still cached there."""
    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver:
        ip, port = parse_nameserver(nameserver)
        resolver.nameservers = [ip]
        resolver.port = port
    resolver.lifetime = 5.0
    chain = [_bare(host)]
    ttl: int | None = None
    for _ in range(MAX_CNAME_HOPS):
        try:
            answer = resolver.resolve(chain[-1], "CNAME")
        except dns.exception.DNSException:  # NXDOMAIN, no answer, timeout: the chain ends here
            break
        if ttl is None and answer.rrset is not None:
            ttl = int(answer.rrset.ttl)
        chain.append(_bare(str(answer[0].target)))
    if len(chain) == 1:
        try:
            answer = resolver.resolve(chain[0], "A")
        except dns.exception.DNSException:
            return chain, None
        ttl = None if answer.rrset is None else int(answer.rrset.ttl)
    return chain, ttl


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
        chain, ttl = cname_chain(host, options.resolver)
        report.extra["cname_chain"] = chain
        if ttl is not None:
            report.extra["ttl"] = ttl
        if target in chain[1:]:
            return "CNAME " + " -> ".join(chain)
        target_addresses = resolve_addresses(target)
        shared = found["host"] & target_addresses
        report.extra.update(
            host_addresses=sorted(found["host"]), target_addresses=sorted(target_addresses)
        )
        how = "no CNAME to it: compared addresses"
        if not shared:
            raise CheckFailed(
                f"{host} ({', '.join(sorted(found['host']))}) does not point at {target} "
                f"({', '.join(sorted(target_addresses))}); {how}"
                + (f"; CNAME chain {' -> '.join(chain)}" if len(chain) > 1 else "")
            )
        return f"{host} and {target} share {', '.join(sorted(shared))} ({how})"

    def ttl_lowered() -> str:
        ttl = report.extra["ttl"]
        if ttl > options.max_ttl:
            raise CheckFailed(
                f"{host}: TTL {ttl} s at this resolver, above {options.max_ttl} s: lower the "
                f"record's TTL to {options.max_ttl} and wait out the old one before the change"
            )
        return (
            f"{host}: TTL {ttl} s at this resolver (at most {options.max_ttl} s: no longer, "
            "older TTL cached there)"
        )

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
        if "ttl" in report.extra:
            await run_step(report, names.DNS_TTL, lambda: asyncio.to_thread(ttl_lowered))
        elif "cname_chain" in report.extra and not _is_address(host):
            report.extra.setdefault(
                "note", f"no TTL read for {host}: its resolver gave no CNAME or A record"
            )
        await run_step(report, names.HTTP_ANSWERS_ON_HOST, lambda: asyncio.to_thread(http_answers))
    except Aborted:
        pass
    report.seconds = time.perf_counter() - started
    return report
