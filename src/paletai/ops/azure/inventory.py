"""`migrate inventory`: the checklist's "Old Environment Documentation", read through az.

The old app's settings (the export `settings export` reads, masked on screen, optionally kept in
a 0600 file), its host names and TLS bindings, its plan's SKU/tier, its daily requests and
failure rate from Application Insights, and the third-party services its settings name (hosts
and names only, never a credential).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.azure.monitor import (
    InsightsError,
    az_failure,
    connection_fields,
    daily_query,
    find_insights,
    query_insights,
    read_app_settings,
)
from paletai.ops.azure.settings import AppSetting, as_paletai_settings, write_settings_file
from paletai.ops.checks import names
from paletai.ops.checks.phase4 import Check, CheckReport
from paletai.ops.results import (
    DailyRequests,
    HostnameBinding,
    InsightsComponent,
    Integration,
    ServicePlan,
    ShownSetting,
    TlsCertificate,
    TrafficSummary,
)

DEFAULT_HOST_SUFFIX = ".azurewebsites.net"
# user:password@ in a URI: everything before the last @ of the authority goes.
_URI_AUTHORITY = re.compile(
    r"^(?P<scheme>[a-z0-9+.-]+)://(?:[^/?#]*@)?(?P<hosts>[^/?#]*)(?P<rest>.*)$", re.I
)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def mongodb_hosts(uri: str) -> str:
    """`cluster0.abc.mongodb.net (MongoDB Atlas, mongodb+srv), database paletai`: the hosts and
    database of a MongoDB URI, never its user or password."""
    match = _URI_AUTHORITY.match(uri.strip())
    if not match:
        return "DB_PATH is not a mongodb:// URI"
    hosts = match["hosts"]
    kind = (
        "MongoDB Atlas"
        if ".mongodb.net" in hosts
        else "Azure Cosmos DB for MongoDB"
        if ".cosmos.azure.com" in hosts
        else "self-hosted MongoDB"
    )
    database = match["rest"].lstrip("/").split("?", 1)[0]
    where = f", database {database}" if database else ""
    return f"{hosts} ({kind}, {match['scheme'].lower()}){where}"


def integrations_of(
    settings: Sequence[AppSetting], insights: InsightsComponent | None
) -> list[Integration]:
    """The third-party services the settings name, described without credentials."""
    values = {s.name: s.value.strip() for s in settings}
    found: list[Integration] = []
    db = values.get("DB_PATH", "")
    found.append(
        Integration(
            name="MongoDB",
            detail=mongodb_hosts(db)
            if db
            else "no DB_PATH: the embedded database (not production)",
        )
    )
    try:
        parsed = as_paletai_settings(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        found.append(Integration(name="AI provider", detail=f"unknown: {where} is invalid"))
    else:
        provider = parsed.ai_provider
        model = {
            "openai": parsed.OPENAI_MODEL,
            "azure-openai": parsed.AZURE_OPENAI_MODEL,
            "anthropic": parsed.ANTHROPIC_MODEL,
        }.get(provider)
        detail = provider + (f", model {model}" if model else "")
        if provider == "azure-openai" and parsed.AZURE_OPENAI_ENDPOINT:
            detail += f", endpoint {parsed.AZURE_OPENAI_ENDPOINT}"
        found.append(Integration(name="AI provider", detail=detail))
    if values.get("ONESIGNAL_APP_ID"):
        key = "REST API key set" if values.get("ONESIGNAL_REST_API_KEY") else "no REST API key"
        detail = f"app id {values['ONESIGNAL_APP_ID']}, {key}"
    else:
        detail = "not configured (pushes are logged and skipped)"
    found.append(Integration(name="OneSignal", detail=detail))
    storage = connection_fields(values.get("AZURE_STORAGE_CONNECTION_STRING", ""))
    container = values.get("AZURE_STORAGE_CONTAINER") or "game-images"
    if values.get("IS_LOCAL_ENV", "").lower() in ("true", "1"):
        detail = "local files (IS_LOCAL_ENV)"
    elif storage.get("accountname"):
        detail = f"account {storage['accountname']}, container {container}"
    elif "usedevelopmentstorage=true" in values.get("AZURE_STORAGE_CONNECTION_STRING", "").lower():
        detail = f"the storage emulator, container {container}"
    elif values.get("AZURE_STORAGE_ACCOUNT_URL"):
        detail = f"{values['AZURE_STORAGE_ACCOUNT_URL']}, container {container}"
    else:
        detail = "not configured (images are local files)"
    found.append(Integration(name="Azure Blob Storage", detail=detail))
    found.append(
        Integration(
            name="Application Insights",
            detail=insights.name if insights is not None else "not found",
        )
    )
    return found


def _hostnames(answer: Any) -> list[HostnameBinding]:
    bindings = []
    for entry in answer or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        name = str(entry["name"]).rsplit("/", 1)[-1]  # older az: "app/host"
        bindings.append(
            HostnameBinding(
                name=name,
                custom=not name.endswith(DEFAULT_HOST_SUFFIX),
                ssl_state=_text(entry.get("sslState")),
                thumbprint=_text(entry.get("thumbprint")),
            )
        )
    return bindings


def _certificates(answer: Any) -> list[TlsCertificate]:
    return [
        TlsCertificate(
            subject_name=_text(entry.get("subjectName")),
            host_names=[str(h) for h in entry.get("hostNames") or []],
            thumbprint=_text(entry.get("thumbprint")),
            expiration=_text(entry.get("expirationDate")),
            issuer=_text(entry.get("issuer")),
        )
        for entry in answer or []
        if isinstance(entry, dict)
    ]


def _domains_detail(bindings: list[HostnameBinding], certs: list[TlsCertificate]) -> str:
    custom = [b for b in bindings if b.custom]
    if not custom:
        default = next((b.name for b in bindings), "the default host name")
        return f"none: only {default}"
    by_thumbprint = {c.thumbprint: c for c in certs if c.thumbprint}
    parts = []
    for binding in custom:
        tls = binding.ssl_state or "no TLS state"
        cert = by_thumbprint.get(binding.thumbprint or "")
        if cert is not None:
            tls += f", certificate {cert.subject_name or '?'} expires {cert.expiration or '?'}"
        elif binding.ssl_state in (None, "Disabled"):
            tls = "no TLS binding"
        parts.append(f"{binding.name} ({tls})")
    return ", ".join(parts)


def _plan(answer: Any) -> ServicePlan:
    sku = answer.get("sku") if isinstance(answer.get("sku"), dict) else {}
    capacity = sku.get("capacity")
    return ServicePlan(
        name=str(answer.get("name") or "?"),
        sku=_text(sku.get("name")),
        tier=_text(sku.get("tier")),
        capacity=capacity if isinstance(capacity, int) else None,
        location=_text(answer.get("location")),
        kind=_text(answer.get("kind")),
    )


def traffic_of(rows: list[dict[str, Any]], days: int) -> TrafficSummary:
    daily = [
        DailyRequests(
            day=str(row.get("day", ""))[:10],
            requests=int(row.get("requests") or 0),
            failed=int(row.get("failed") or 0),
        )
        for row in rows
    ]
    total = sum(d.requests for d in daily)
    failed = sum(d.failed for d in daily)
    return TrafficSummary(
        days=days,
        total_requests=total,
        failed_requests=failed,
        average_daily_requests=round(total / days, 1),
        failure_rate=round(failed / total, 4) if total else 0.0,
        daily=daily,
    )


def run_inventory(
    az: AzCli,
    app: str,
    resource_group: str,
    days: int,
    report: CheckReport,
    *,
    out: Path | None = None,
    insights_group: str | None = None,
) -> None:
    """Document the old app, one check per checklist item; az failures before the first
    check (not logged in, no such app) raise DeployError."""
    started = time.perf_counter()
    settings = read_app_settings(az, app, resource_group)
    report.extra["settings"] = [
        ShownSetting(name=s.name, value=s.shown, slotSetting=s.slot_setting) for s in settings
    ]
    detail = f"{len(settings)} settings ({sum(s.secret for s in settings)} secret, masked)"
    if out is not None:
        try:
            write_settings_file(out, settings)
        except OSError as exc:
            raise InsightsError(
                f"cannot write {out}: {exc.strerror}; give --out a writable path"
            ) from None
        report.extra["settings_file"] = str(out)
        detail += f" -> {out} (mode 0600, values in clear)"
    report.add(Check(names.INVENTORY_SETTINGS, True, time.perf_counter() - started, detail))

    started = time.perf_counter()
    site = az.run("webapp", "show", "--name", app, "--resource-group", resource_group) or {}
    if not isinstance(site, dict):
        site = {}
    report.extra.update(
        state=_text(site.get("state")), default_host_name=_text(site.get("defaultHostName"))
    )
    bindings = _hostnames(
        az.run(
            "webapp",
            "config",
            "hostname",
            "list",
            "--webapp-name",
            app,
            "--resource-group",
            resource_group,
        )
    )
    certs = _certificates(
        az.run("webapp", "config", "ssl", "list", "--resource-group", resource_group)
    )
    # `ssl list` lists the group's certificates: keep this app's (bound, or for its hosts).
    bound = {b.thumbprint for b in bindings if b.thumbprint}
    hosts = {b.name for b in bindings}
    certs = [c for c in certs if c.thumbprint in bound or hosts & set(c.host_names)]
    report.extra.update(hostnames=bindings, certificates=certs)
    report.add(
        Check(
            names.INVENTORY_DOMAINS,
            True,
            time.perf_counter() - started,
            _domains_detail(bindings, certs),
        )
    )

    started = time.perf_counter()
    farm = site.get("serverFarmId")
    if farm:
        plan = _plan(az.run("appservice", "plan", "show", "--ids", str(farm)) or {})
        report.extra["plan"] = plan
        count = (
            f", {plan.capacity} instance{'s' if plan.capacity != 1 else ''}"
            if plan.capacity
            else ""
        )
        report.add(
            Check(
                names.INVENTORY_PLAN,
                bool(plan.sku),
                time.perf_counter() - started,
                f"{plan.sku or '?'} ({plan.tier or '?'}){count}, plan {plan.name}"
                + (f", {plan.location}" if plan.location else ""),
            )
        )
    else:
        report.add(Check(names.INVENTORY_PLAN, False, 0.0, "az webapp show named no serverFarmId"))

    started = time.perf_counter()
    found = find_insights(az, settings, insights_group or resource_group)
    if found.component is None:
        report.add(
            Check(
                names.INVENTORY_TRAFFIC,
                False,
                time.perf_counter() - started,
                f"{found.detail}; record the traffic from the portal (App Service -> Metrics)",
            )
        )
    else:
        report.extra["insights"] = found.component
        try:
            rows = query_insights(az, found.component, daily_query(days), f"P{days}D")
        except (DeployError, InsightsError) as exc:
            why = az_failure(exc) if isinstance(exc, DeployError) else str(exc)
            report.add(Check(names.INVENTORY_TRAFFIC, False, time.perf_counter() - started, why))
        else:
            traffic = traffic_of(rows, days)
            report.extra["traffic"] = traffic
            report.add(
                Check(
                    names.INVENTORY_TRAFFIC,
                    True,
                    time.perf_counter() - started,
                    f"{traffic.average_daily_requests:,.0f} requests/day over {days} days "
                    f"({traffic.total_requests:,} in all), failure rate "
                    f"{traffic.failure_rate:.1%}; from {found.component.name}",
                )
            )

    integrations = integrations_of(settings, found.component)
    report.extra["integrations"] = integrations
    report.add(
        Check(
            names.INVENTORY_INTEGRATIONS,
            True,
            0.0,
            "; ".join(f"{i.name}: {i.detail}" for i in integrations),
        )
    )
