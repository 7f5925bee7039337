"""Opening and closing what a process shares: the MongoDB client, storage, push, HTTP, the AI
provider. Used by the API's lifespan and by `paletai worker`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from paletai import __version__
from paletai.config import Settings
from paletai.core import telemetry
from paletai.core.context import AppContext
from paletai.core.maintenance import MaintenanceState
from paletai.core.security import PasswordHashing, default_hash_slots
from paletai.db.client import (
    APP_CONNECT_TIMEOUT_MS,
    APP_SERVER_SELECTION_TIMEOUT_MS,
    OutageLog,
    database_name,
    describe_hosts,
    make_client,
)
from paletai.db.indexes import ensure_indexes
from paletai.generation.providers.factory import make_provider
from paletai.notifications.sender import make_push_sender
from paletai.storage.factory import make_image_store

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start; the message says which setting to fix."""


def mongo_uri_from(settings: Settings) -> str:
    if settings.DB_PATH is None:
        raise StartupError(
            "DB_PATH is not set: set it to the MongoDB URI (mongodb://... or mongodb+srv://...), "
            "or run `paletai serve`, which starts the embedded database"
        )
    return settings.DB_PATH.get_secret_value()


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[AppContext]:
    problems = settings.problems()
    if problems:
        raise StartupError("invalid settings:\n" + "\n".join(problems))
    uri = mongo_uri_from(settings)
    client = make_client(
        uri,
        app_name=settings.APP_NAME,
        event_listeners=[*telemetry.mongo_event_listeners(), OutageLog(describe_hosts(uri))],
        serverSelectionTimeoutMS=APP_SERVER_SELECTION_TIMEOUT_MS,
        connectTimeoutMS=APP_CONNECT_TIMEOUT_MS,
    )
    db = client[database_name(uri, settings.DB_NAME)]
    try:
        await ensure_indexes(db)
    except Exception as exc:
        await client.close()
        raise StartupError(
            f"cannot reach MongoDB at {describe_hosts(uri)} (DB_PATH): {exc}"
        ) from None
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(10.0), headers={"user-agent": f"paletai/{__version__}"}
    )
    store = make_image_store(settings)
    provider = make_provider(settings)
    ctx = AppContext(
        settings=settings,
        client=client,
        db=db,
        store=store,
        push=make_push_sender(settings, http=http),
        http=http,
        provider=provider,
        jwt_secret=settings.jwt_secret(),
        maintenance=MaintenanceState(db),
        passwords=PasswordHashing(
            settings.PASSWORD_HASH_CONCURRENCY or default_hash_slots(),
            settings.PASSWORD_HASH_WAIT_SECONDS,
        ),
    )
    log.info(
        "PaletAI %s: database %s, ai %s (%s), images %s, push %s",
        __version__,
        describe_hosts(uri),
        provider.name,
        provider.model,
        store.kind,
        "onesignal" if ctx.push.configured else "off",
    )
    try:
        yield ctx
    finally:
        await provider.aclose()
        await ctx.push.aclose()
        await store.aclose()
        await http.aclose()
        await client.close()
