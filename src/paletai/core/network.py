"""The client's address: the one place that decides whether to believe X-Forwarded-For.

`paletai serve` runs uvicorn without proxy headers so this is the only decision; under gunicorn,
uvicorn's worker reads the same FORWARDED_ALLOW_IPS variable, and applying the rule again to its
answer gives the same address.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from fastapi import Request

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxies:
    """FORWARDED_ALLOW_IPS: addresses and networks of the proxies we believe, or `*`."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.everyone = "*" in entries
        self.networks = [ipaddress.ip_network(e, strict=False) for e in entries if e != "*"]

    def __contains__(self, address: IPAddress | None) -> bool:
        if address is None:
            return False
        return self.everyone or any(address in network for network in self.networks)


@lru_cache(maxsize=16)
def trusted_proxies(entries: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(entries)


def parse_address(value: str) -> IPAddress | None:
    """An address from a header entry: `1.2.3.4`, `1.2.3.4:port` (App Service), `[v6]:port`
    or a bare IPv6 address; None for anything else."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def resolve_client(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    X-Forwarded-For hop that is not itself a trusted proxy (walking from the right, as uvicorn
    and gunicorn do), so a client cannot choose its address by writing the header itself."""
    peer_address = parse_address(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not forwarded_for or peer_address not in trusted:
        return str(peer_address)
    hops = [parse_address(hop) for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop is None:
            # Garbage in the chain: nothing left of it can be believed.
            return str(peer_address)
        if hop not in trusted:
            return str(hop)
    return str(hops[0]) if hops else str(peer_address)


def client_address(request: Request, trusted_entries: list[str]) -> str:
    forwarded = ", ".join(request.headers.getlist("x-forwarded-for")) or None
    peer = request.client.host if request.client else None
    return resolve_client(peer, forwarded, trusted_proxies(tuple(trusted_entries)))


def address_bucket(address: str) -> str:
    """What throttles count by: an IPv4 address, or an IPv6 /64 (one customer's whole subnet:
    rotating the low 64 bits must not give an attacker new budgets)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)
