"""`paletai deploy domain add`: the checklist's Phase 5 "Custom domain added to new App Service"
and "SSL certificate working", through the `az` CLI: the host name, a free App Service managed
certificate for it, its SNI binding; then the same DNS and HTTPS check as `migrate dns`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.verify import one_line
from paletai.ops.checks import names
from paletai.ops.checks.phase4 import Check, CheckReport

# Shown in a dry run, where `ssl create` has not run and no thumbprint exists yet.
THUMBPRINT_PLACEHOLDER = "THUMBPRINT_FROM_SSL_CREATE"
# What App Service says when the DNS record that proves the domain is ours is missing.
_DNS_REFUSALS = ("cname", "asuid", "awverify", "txt record", "domain verification")


class DomainRefused(DeployError):
    """Azure refused the host name: the DNS record it needs is missing (the message says which)."""


@dataclass(frozen=True)
class DomainRequest:
    host: str
    app: str
    resource_group: str


def default_host_name(az: AzCli, request: DomainRequest) -> str:
    """The app's own host name (what the CNAME points at): APP.azurewebsites.net, or the
    region-unique name newer apps get."""
    found = az.run(
        "webapp",
        "show",
        "--name",
        request.app,
        "--resource-group",
        request.resource_group,
        "--query",
        "defaultHostName",
    )
    return str(found) if isinstance(found, str) and found else f"{request.app}.azurewebsites.net"


def refusal_message(request: DomainRequest, target: str, exc: DeployError) -> str:
    """One line: the record to create, when Azure refused the name for want of it."""
    return (
        f"Azure refused {request.host} for {request.app}: create the DNS record "
        f"`{request.host} CNAME {target}` (TTL 300; or TXT asuid.{request.host} = the app's "
        "customDomainVerificationId), wait until `nslookup "
        f"{request.host}` shows it, then run this again ({one_line(exc)})"
    )


def add_domain(
    az: AzCli, request: DomainRequest, report: CheckReport, target: str
) -> tuple[bool, str | None]:
    """Host name, certificate, binding, in that order, each a check in `report`; stops at the
    first that fails. DomainRefused when the host name is refused for want of its DNS record.
    Returns (all done, thumbprint)."""
    app = ["--name", request.app, "--resource-group", request.resource_group]

    def step(name: str, fn: Callable[[], str]) -> bool:
        started = time.perf_counter()
        try:
            detail, ok = fn(), True
        except DomainRefused:
            raise
        except DeployError as exc:
            if "az login" in str(exc):
                raise
            detail, ok = one_line(exc), False
        if not az.dry_run:
            report.add(Check(name, ok, round(time.perf_counter() - started, 3), detail))
        return ok

    def hostname() -> str:
        try:
            az.run(
                "webapp",
                "config",
                "hostname",
                "add",
                "--webapp-name",
                request.app,
                "--resource-group",
                request.resource_group,
                "--hostname",
                request.host,
            )
        except DeployError as exc:
            said = str(exc).lower()
            if "az login" not in said and any(word in said for word in _DNS_REFUSALS):
                raise DomainRefused(refusal_message(request, target, exc)) from None
            raise
        return f"{request.host} added to {request.app}"

    found: dict[str, Any] = {}

    def certificate() -> str:
        cert = az.run("webapp", "config", "ssl", "create", *app, "--hostname", request.host)
        thumbprint = cert.get("thumbprint") if isinstance(cert, dict) else None
        if az.dry_run:
            thumbprint = THUMBPRINT_PLACEHOLDER
        if not thumbprint:
            raise DeployError(f"`az webapp config ssl create` gave no thumbprint: {cert!r:.200}")
        found["thumbprint"] = str(thumbprint)
        expires = cert.get("expirationDate") if isinstance(cert, dict) else None
        return f"App Service managed certificate {thumbprint}" + (
            f", valid until {expires}" if expires else ""
        )

    def binding() -> str:
        az.run(
            "webapp",
            "config",
            "ssl",
            "bind",
            *app,
            "--certificate-thumbprint",
            found["thumbprint"],
            "--ssl-type",
            "SNI",
            "--hostname",
            request.host,
        )
        return f"https://{request.host} served with that certificate (SNI)"

    done = (
        step(names.DOMAIN_HOSTNAME, hostname)
        and step(names.DOMAIN_CERTIFICATE, certificate)
        and step(names.DOMAIN_BINDING, binding)
    )
    return done, found.get("thumbprint")
