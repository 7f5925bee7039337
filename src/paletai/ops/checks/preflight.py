"""Pre-Migration as checks (`paletai migrate preflight`): the checklist's "Information Gathering"
and "Database Preparation", measured instead of written down.

Azure: `az` is signed in to the tenant, the subscription is visible and the signed-in account
holds Contributor or Owner on it. MongoDB: the URI connects and authenticates, the server's
version and data size, and whether change streams open (what `db sync` needs). Keys: each
configured AI provider accepts its key (the cheapest authenticated call of its official SDK),
OneSignal accepts its REST API key, the storage account answers. Every network call has a
timeout; every detail is scrubbed of the secrets it was given before it is shown or saved.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from pymongo import uri_parser
from pymongo.errors import InvalidURI, OperationFailure, PyMongoError

from paletai.config import Settings
from paletai.db.client import describe_hosts
from paletai.ops.azure.az import AzCli, DeployError
from paletai.ops.checks import names
from paletai.ops.checks.phase4 import Check, CheckFailed, CheckReport
from paletai.ops.db.common import connect, database_from_uri
from paletai.ops.errors import OpsError

COMMAND = "migrate preflight"
PRIVILEGED_ROLES = ("Owner", "Contributor")
CHANGE_STREAM_NEEDS_REPLICA_SET = 40573  # "$changeStream ... only supported on replica sets"
COSMOS_HOST_SUFFIXES = (".mongo.cosmos.azure.com", ".mongocluster.cosmos.azure.com")
AI_PROVIDERS = ("openai", "azure-openai", "anthropic")
# az's words when nobody is signed in ("Please run 'az login' to setup account.").
_NOT_SIGNED_IN = ("az login", "no subscription found")
# The collection `db sync` follows first; watching it is what a sync would do.
WATCHED_COLLECTION = "games"


@dataclass
class PreflightOptions:
    settings: Settings
    tenant: str | None = None
    subscription: str | None = None
    assignee: str | None = None  # default: the signed-in account
    mongodb_uri: str | None = None  # default: settings.DB_PATH
    db_name: str | None = None
    timeout: float = 10.0  # seconds per network call (MongoDB, AI, OneSignal, storage)
    az_timeout: float = 60.0  # seconds per `az` call
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def uri(self) -> str | None:
        if self.mongodb_uri:
            return self.mongodb_uri
        return self.settings.DB_PATH.get_secret_value() if self.settings.DB_PATH else None

    def secrets(self) -> list[str]:
        """Every secret value preflight holds: none may appear in a line or in --json."""
        s = self.settings
        found = [
            value.get_secret_value()
            for value in (
                s.DB_PATH,
                s.OPENAI_API_KEY,
                s.AZURE_OPENAI_API_KEY,
                s.ANTHROPIC_API_KEY,
                s.ONESIGNAL_REST_API_KEY,
                s.AZURE_STORAGE_CONNECTION_STRING,
                s.APPLICATIONINSIGHTS_CONNECTION_STRING,
                s.JWT_SECRET_KEY,
                s.ADMIN_TOKEN,
            )
            if value is not None
        ]
        for uri in (self.mongodb_uri, *found[:1]):
            if uri and uri.startswith("mongodb"):
                found += [uri, *_uri_credentials(uri)]
        conn = s.AZURE_STORAGE_CONNECTION_STRING
        if conn is not None:
            found += [
                part.split("=", 1)[1]
                for part in conn.get_secret_value().split(";")
                if part.lower().startswith(("accountkey=", "sharedaccesssignature="))
            ]
        # Longest first, so a key inside a connection string is masked as part of the whole.
        return sorted({f for f in found if len(f) >= 4}, key=len, reverse=True)


def _uri_credentials(uri: str) -> list[str]:
    try:
        parsed = uri_parser.parse_uri(uri, validate=False, warn=True, connect_timeout=None)
    except (InvalidURI, ValueError, PyMongoError):
        # Unparseable: hide whatever sits between :// and @ (user and password).
        rest = uri.split("://", 1)[-1]
        return [rest.split("@", 1)[0]] if "@" in rest else []
    # The password only: a user name is no secret (and is often the database's name too).
    return [str(parsed["password"])] if parsed.get("password") else []


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _step(
    report: CheckReport,
    options: PreflightOptions,
    name: str,
    fn: Callable[[], Awaitable[str]],
    *,
    limit: float | None = None,
) -> bool:
    """Run one check under a deadline; any failure becomes its one-line detail, secrets masked."""
    started = time.perf_counter()
    seconds = limit if limit is not None else options.timeout * 2 + 5
    try:
        async with asyncio.timeout(seconds):
            detail, ok = await fn(), True
    except CheckFailed as exc:
        detail, ok = str(exc), False
    except TimeoutError:
        detail, ok = f"no answer within {seconds:g} s", False
    except OpsError as exc:
        detail, ok = _first_line(exc), False
    except (PyMongoError, httpx.HTTPError, OSError) as exc:
        detail, ok = f"{type(exc).__name__}: {_first_line(exc)}", False
    except Exception as exc:  # noqa: BLE001 - one line per failed check, never a traceback
        detail, ok = f"unexpected {type(exc).__name__}: {_first_line(exc)}", False
    detail = " ".join(redact(detail, options.secrets()).split())
    report.add(Check(name, ok, round(time.perf_counter() - started, 3), detail))
    return ok


def _pass(report: CheckReport, name: str, detail: str) -> None:
    """A line for something there is nothing to check of (not configured)."""
    report.add(Check(name, True, 0.0, detail))


async def run_preflight(options: PreflightOptions, report: CheckReport) -> CheckReport:
    """Every preflight check, in the checklist's order, into `report`."""
    started = time.perf_counter()
    report.extra.update(
        tenant=options.tenant,
        subscription=options.subscription,
        ai_provider=options.settings.ai_provider,
        region=options.environ.get("REGION_NAME") or None,
        site=options.environ.get("WEBSITE_SITE_NAME") or None,
        warnings=[],
    )
    if options.tenant or options.subscription:
        await _azure_checks(options, report)
    await _mongodb_checks(options, report)
    for provider in AI_PROVIDERS:
        await _ai_check(options, report, provider)
    await _onesignal_check(options, report)
    await _storage_check(options, report)
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------------------------
# Azure, through `az` (ops/azure/az.py)


def _az(options: PreflightOptions, subscription: str | None = None) -> AzCli:
    az = AzCli.locate(subscription, options.secrets())
    az.timeout = options.az_timeout
    return az


def _not_signed_in(exc: DeployError) -> bool:
    text = str(exc).lower()
    return any(words in text for words in _NOT_SIGNED_IN)


def _login_hint(options: PreflightOptions) -> str:
    return f"run `az login --tenant {options.tenant}`" if options.tenant else "run `az login`"


async def _azure_checks(options: PreflightOptions, report: CheckReport) -> None:
    account: dict[str, Any] = {}
    subscription: dict[str, Any] = {}

    async def signed_in() -> str:
        try:
            found = await asyncio.to_thread(_az(options).run, "account", "show")
        except DeployError as exc:
            if _not_signed_in(exc):
                raise CheckFailed(f"az is not signed in: {_login_hint(options)}") from None
            raise
        if not isinstance(found, dict):
            raise CheckFailed(f"`az account show` answered {str(found)[:80]!r}, not an account")
        account.update(found)
        user = found.get("user") or {}
        report.extra.update(account=user.get("name"), account_type=user.get("type"))
        return (
            f"as {user.get('name', '?')} ({user.get('type', '?')}), tenant {found.get('tenantId')}"
        )

    async def visible() -> str:
        wanted = str(options.subscription).lower()
        found = await asyncio.to_thread(_az(options).run, "account", "list", "--all")
        rows = [r for r in found or [] if isinstance(r, dict)]
        match = [
            r for r in rows if wanted in (str(r.get("id")).lower(), str(r.get("name")).lower())
        ]
        if not match:
            user = (account.get("user") or {}).get("name", "the signed-in account")
            raise CheckFailed(
                f"subscription {options.subscription} not found: {user} sees {len(rows)} "
                f"other subscription(s); check the ID, or {_login_hint(options)} as an account "
                "that has access to it"
            )
        subscription.update(match[0])
        state = match[0].get("state", "?")
        if state != "Enabled":
            raise CheckFailed(
                f"subscription {match[0].get('name')} ({match[0].get('id')}) is {state}, "
                "not Enabled"
            )
        return f"{match[0].get('name')} ({match[0].get('id')}), {state}"

    async def tenant() -> str:
        where = subscription or account
        seen = str(where.get("tenantId", ""))
        if seen.lower() != str(options.tenant).lower():
            if subscription:
                raise CheckFailed(
                    f"subscription {options.subscription} is in tenant {seen}, not --tenant "
                    f"{options.tenant}: check both IDs"
                )
            raise CheckFailed(
                f"signed in to tenant {seen}, not {options.tenant}: {_login_hint(options)}"
            )
        return f"{seen}" + (f" (subscription {options.subscription})" if subscription else "")

    async def role() -> str:
        user = account.get("user") or {}
        assignee = options.assignee or str(user.get("name", ""))
        scope = f"/subscriptions/{subscription.get('id', options.subscription)}"
        rows = await asyncio.to_thread(
            _az(options, options.subscription).run, *role_assignment_args(assignee, scope, user)
        )
        held = privileged_assignments(rows if isinstance(rows, list) else [], scope)
        if not held:
            others = sorted(
                {str(r.get("roleDefinitionName")) for r in rows or [] if isinstance(r, dict)}
            )
            found = f" (holds: {', '.join(others)})" if others else " (holds no role there)"
            raise CheckFailed(
                f"{assignee} is neither Contributor nor Owner on {scope}{found}; ask an Owner to "
                f"run `az role assignment create --assignee {assignee} --role Contributor "
                f"--scope {scope}`"
            )
        return "; ".join(held)

    limit = options.az_timeout + 5
    if not await _step(report, options, names.PREFLIGHT_AZ_SIGNED_IN, signed_in, limit=limit):
        return
    if options.subscription and not await _step(
        report, options, names.PREFLIGHT_AZ_SUBSCRIPTION, visible, limit=limit
    ):
        return
    if options.tenant:
        await _step(report, options, names.PREFLIGHT_AZ_TENANT, tenant)
    if options.subscription:
        await _step(report, options, names.PREFLIGHT_AZ_ROLE, role, limit=limit)


def role_assignment_args(assignee: str, scope: str, user: dict[str, Any]) -> list[str]:
    """`az role assignment list` for the assignee at the subscription and the scopes above it;
    a user's group memberships count too (a service principal's do not exist for az)."""
    args = ["role", "assignment", "list", "--assignee", assignee, "--scope", scope]
    args.append("--include-inherited")
    if user.get("type") == "user":
        args.append("--include-groups")
    return args


def privileged_assignments(rows: Sequence[Any], scope: str) -> list[str]:
    """ "Owner at /subscriptions/S" lines for Owner/Contributor held at the subscription or above
    it (a management group, the root); a resource group's role is not enough to deploy."""
    held = []
    for row in rows:
        if not isinstance(row, dict) or row.get("roleDefinitionName") not in PRIVILEGED_ROLES:
            continue
        where = str(row.get("scope", ""))
        if where.lower() != scope.lower() and where.lower().startswith("/subscriptions/"):
            continue
        via = ""
        if row.get("principalType") == "Group":
            via = f" via group {row.get('principalName') or row.get('principalId')}"
        held.append(f"{row['roleDefinitionName']} at {where}{via}")
    return held


# ---------------------------------------------------------------------------------------------
# MongoDB


def uri_hosts(uri: str) -> list[str]:
    """The host names a URI lists, read from its text (no SRV lookup, no credentials)."""
    rest = uri.split("://", 1)[-1]
    hosts = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return [h.rsplit(":", 1)[0].strip("[]").lower() for h in hosts.split(",") if h]


def is_cosmos(uri: str) -> bool:
    return any(host.endswith(COSMOS_HOST_SUFFIXES) for host in uri_hosts(uri))


async def _mongodb_checks(options: PreflightOptions, report: CheckReport) -> None:
    uri = options.uri
    if not uri:
        report.add(
            Check(
                names.PREFLIGHT_MONGODB,
                False,
                0.0,
                "no MongoDB URI: pass --mongodb-uri or set DB_PATH to the database to migrate",
            )
        )
        return
    report.extra["mongodb_hosts"] = describe_hosts(uri)
    cosmos = is_cosmos(uri)
    report.extra["cosmos_db"] = cosmos
    if cosmos:
        report.extra["warnings"].append(
            "Azure Cosmos DB host: its MongoDB API's change streams emit no delete events; "
            "`db sync` reconciles _id sets to catch deletes (docs/db-operations.md)"
        )
    clients: list[Any] = []

    async def connected() -> str:
        with warnings.catch_warnings():
            # PyMongo's own Cosmos DB notice: the WARN line below says what matters here.
            warnings.filterwarnings("ignore", message=".*CosmosDB", category=UserWarning)
            client = await connect(uri, role="given", timeout_ms=int(options.timeout * 1000))
        clients.append(client)
        name = database_from_uri(uri, options.db_name)
        build = await client.admin.command("buildInfo")
        version = str(build.get("version", "?"))
        report.extra["mongodb_version"] = version
        try:
            stats = await client[name].command("dbStats")
        except OperationFailure as exc:
            raise CheckFailed(
                f"MongoDB {version} answers, but dbStats on {name!r} was refused "
                f"(code {exc.code}: {_first_line(exc)}): give the URI a user with read access "
                "to that database"
            ) from None
        size = int(stats.get("dataSize") or 0)
        report.extra["mongodb_data_bytes"] = size
        return (
            f"{describe_hosts(uri)}: MongoDB {version}; database {name}: "
            f"{int(stats.get('collections') or 0)} collections, "
            f"{int(stats.get('objects') or 0):,} documents, {_size(size)} of data"
        )

    async def change_streams() -> str:
        client = clients[0]
        hello = await client.admin.command("hello")
        topology = (
            f"replica set {hello['setName']}"
            if hello.get("setName")
            else "sharded cluster (mongos)"
            if hello.get("msg") == "isdbgrid"
            else "no replica set name reported"
        )
        collection = client[database_from_uri(uri, options.db_name)][WATCHED_COLLECTION]
        try:
            stream = await collection.watch(max_await_time_ms=200)
            try:
                await stream.try_next()
            finally:
                await stream.close()
        except OperationFailure as exc:
            report.extra["change_streams"] = False
            if exc.code == CHANGE_STREAM_NEEDS_REPLICA_SET:
                raise CheckFailed(
                    f"change streams unavailable ({topology}; code {exc.code}): `db sync` needs "
                    "a replica set or Atlas; use `db backup` + `db restore` with a write pause"
                ) from None
            raise CheckFailed(
                f"change streams refused (code {exc.code}: {_first_line(exc)}): `db sync` "
                "cannot run; use `db backup` + `db restore`, or grant changeStream + find"
            ) from None
        report.extra["change_streams"] = True
        return f"a change stream opened on {WATCHED_COLLECTION} ({topology}): `db sync` possible"

    try:
        if await _step(report, options, names.PREFLIGHT_MONGODB, connected):
            await _step(report, options, names.PREFLIGHT_CHANGE_STREAMS, change_streams)
    finally:
        for client in clients:
            await client.close()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


# ---------------------------------------------------------------------------------------------
# AI keys: each official SDK's `models.list()`, the cheapest call that needs a valid key


def _ai_setting(provider: str) -> str:
    return {
        "openai": "OPENAI_API_KEY",
        "azure-openai": "AZURE_OPENAI_API_KEY",
        "anthropic": "ANTHROPIC_API_KEY",
    }[provider]


def _ai_unconfigured(settings: Settings, provider: str) -> str | None:
    """Why `provider` is not configured (the settings it lacks), None when it is."""
    missing = [] if _secret(settings, _ai_setting(provider)) else [_ai_setting(provider)]
    if provider == "azure-openai" and not settings.AZURE_OPENAI_ENDPOINT:
        missing.insert(0, "AZURE_OPENAI_ENDPOINT")
    return " and ".join(missing) + " unset" if missing else None


def _secret(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    return value.get_secret_value() if value is not None else ""


async def _ai_check(options: PreflightOptions, report: CheckReport, provider: str) -> None:
    settings = options.settings
    name = names.PREFLIGHT_AI_KEY + provider
    selected = settings.ai_provider == provider
    missing = _ai_unconfigured(settings, provider)
    if missing is not None:
        if selected:
            report.add(
                Check(name, False, 0.0, f"not configured ({missing}) but AI_PROVIDER={provider}")
            )
        else:
            _pass(report, name, f"not configured ({missing})")
        return

    # Imported before the clock starts: an SDK's import takes seconds, its call does not.
    importlib.import_module("anthropic" if provider == "anthropic" else "openai")

    async def accepted() -> str:
        ids, where = await _list_models(settings, provider, options.timeout)
        detail = f"key accepted by {where}: {len(ids)} models listed"
        model = {"openai": settings.OPENAI_MODEL, "anthropic": settings.ANTHROPIC_MODEL}.get(
            provider
        )
        if model and ids:
            setting = "OPENAI_MODEL" if provider == "openai" else "ANTHROPIC_MODEL"
            listed = "is listed" if model in ids else "is NOT listed: check the model name"
            detail += f"; {setting} {model} {listed}"
        if selected:
            detail += " (the AI_PROVIDER in force)"
        return detail

    await _step(report, options, name, accepted)


async def _list_models(settings: Settings, provider: str, seconds: float) -> tuple[list[str], str]:
    """The model ids the provider lists for the configured key, and the host that answered."""
    if provider == "anthropic":
        import anthropic

        client_a = anthropic.AsyncAnthropic(
            api_key=_secret(settings, "ANTHROPIC_API_KEY"),
            base_url=settings.ANTHROPIC_BASE_URL or None,
            timeout=seconds,
            max_retries=0,
        )
        where = _host(str(client_a.base_url))
        try:
            page_a = await client_a.models.list(limit=100)
            return [m.id for m in page_a.data], where
        except anthropic.APIStatusError as exc:
            raise CheckFailed(_refused(provider, where, exc.status_code)) from None
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
            raise CheckFailed(_unreachable(provider, where, seconds, exc)) from None
        finally:
            await client_a.close()
    import openai

    client: openai.AsyncOpenAI
    if provider == "azure-openai":
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=str(settings.AZURE_OPENAI_ENDPOINT),
            api_key=_secret(settings, "AZURE_OPENAI_API_KEY"),
            api_version=settings.AZURE_OPENAI_API_VERSION,
            timeout=seconds,
            max_retries=0,
        )
    else:
        client = openai.AsyncOpenAI(
            api_key=_secret(settings, "OPENAI_API_KEY"),
            base_url=settings.OPENAI_BASE_URL or None,
            timeout=seconds,
            max_retries=0,
        )
    where = _host(str(client.base_url))
    try:
        page = await client.models.list()
        return [m.id for m in page.data], where
    except openai.APIStatusError as exc:
        raise CheckFailed(_refused(provider, where, exc.status_code)) from None
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        raise CheckFailed(_unreachable(provider, where, seconds, exc)) from None
    finally:
        await client.close()


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _refused(provider: str, where: str, status: int) -> str:
    setting = _ai_setting(provider)
    if status in (401, 403):
        return f"{where} refused the key (HTTP {status}): set {setting} to a valid key"
    if status == 404 and provider == "azure-openai":
        return f"{where} answered 404: check AZURE_OPENAI_ENDPOINT (the resource's endpoint)"
    return f"{where} answered HTTP {status} to the model list: check {setting} and the endpoint"


def _unreachable(provider: str, where: str, timeout: float, exc: BaseException) -> str:
    base = {"openai": "OPENAI_BASE_URL", "azure-openai": "AZURE_OPENAI_ENDPOINT"}.get(
        provider, "ANTHROPIC_BASE_URL"
    )
    if "Timeout" in type(exc).__name__:
        return f"no answer from {where} within {timeout:g} s: check {base} and the network"
    cause = exc.__cause__ or exc
    return f"cannot connect to {where} ({_first_line(cause)}): check {base} and the network"


# ---------------------------------------------------------------------------------------------
# OneSignal: its REST API key on a read-only call


async def _onesignal_check(options: PreflightOptions, report: CheckReport) -> None:
    settings = options.settings
    app_id, key = settings.ONESIGNAL_APP_ID, _secret(settings, "ONESIGNAL_REST_API_KEY")
    if not app_id and not key:
        _pass(report, names.PREFLIGHT_ONESIGNAL, "not configured: push sends are skipped")
        return
    if not app_id or not key:
        lacking = "ONESIGNAL_REST_API_KEY" if app_id else "ONESIGNAL_APP_ID"
        report.add(
            Check(names.PREFLIGHT_ONESIGNAL, False, 0.0, f"{lacking} unset; set both or neither")
        )
        return

    async def accepted() -> str:
        api = settings.ONESIGNAL_API_URL.rstrip("/")
        # As notifications/onesignal.py sends: `Key` for api.onesignal.com, `Basic` for /api/v1.
        scheme = "Basic" if "/api/v1" in api else "Key"
        url = f"{api}/notifications"
        async with httpx.AsyncClient(timeout=options.timeout) as http:
            try:
                response = await http.get(
                    url,
                    params={"app_id": app_id, "limit": 1},
                    headers={"Authorization": f"{scheme} {key}", "Accept": "application/json"},
                )
            except httpx.TransportError as exc:
                raise CheckFailed(
                    f"no answer from {_host(api)} within {options.timeout:g} s "
                    f"({type(exc).__name__}): check ONESIGNAL_API_URL"
                ) from None
        if response.status_code in (401, 403):
            raise CheckFailed(
                f"{_host(api)} refused the REST API key for app {app_id} "
                f"(HTTP {response.status_code}): set ONESIGNAL_REST_API_KEY to the app's key"
            )
        if not response.is_success:
            raise CheckFailed(
                f"{_host(api)} answered HTTP {response.status_code} for app {app_id}: check "
                "ONESIGNAL_APP_ID"
            )
        return f"app {app_id}: the REST API key reads its messages ({_host(api)})"

    await _step(report, options, names.PREFLIGHT_ONESIGNAL, accepted)


# ---------------------------------------------------------------------------------------------
# Storage: the account answers to the app's credentials


async def _storage_check(options: PreflightOptions, report: CheckReport) -> None:
    settings = options.settings
    conn = _secret(settings, "AZURE_STORAGE_CONNECTION_STRING").strip()
    if settings.IS_LOCAL_ENV or not (conn or settings.AZURE_STORAGE_ACCOUNT_URL):
        _pass(report, names.PREFLIGHT_STORAGE, "not configured: covers are kept on local disk")
        return
    if not conn:
        _pass(
            report,
            names.PREFLIGHT_STORAGE,
            "not checked: AZURE_STORAGE_ACCOUNT_URL signs in with the app's managed identity; "
            "`migrate check --require-blob` checks it from the app",
        )
        return
    container = settings.AZURE_STORAGE_CONTAINER

    async def answers() -> str:
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
        from azure.storage.blob.aio import BlobServiceClient

        from paletai.storage.azure_blob import error_code

        try:
            service = BlobServiceClient.from_connection_string(
                conn,
                connection_timeout=options.timeout,
                read_timeout=options.timeout,
                retry_total=0,
            )
        except ValueError as exc:
            raise CheckFailed(
                f"AZURE_STORAGE_CONNECTION_STRING is not a connection string ({exc})"
            ) from None
        async with service:
            account = service.account_name
            try:
                info = await service.get_account_information()
            except HttpResponseError as exc:
                raise CheckFailed(
                    f"storage account {account} refused the key (HTTP {exc.status_code}, "
                    f"{error_code(exc)}): check AZURE_STORAGE_CONNECTION_STRING"
                ) from None
            except AzureError as exc:
                raise CheckFailed(
                    f"storage account {account} did not answer within {options.timeout:g} s "
                    f"({type(exc).__name__}): check the connection string's endpoint"
                ) from None
            kind = f"{info.get('account_kind', '?')}, {info.get('sku_name', '?')}"
            try:
                props = await service.get_container_client(container).get_container_properties()
            except ResourceNotFoundError:
                return f"account {account} answers ({kind}); container {container} does not exist"
            public = props.public_access or "private"
            return f"account {account} answers ({kind}); container {container}: {public} access"

    await _step(report, options, names.PREFLIGHT_STORAGE, answers)
