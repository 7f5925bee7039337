"""The ASGI app: `app = create_app()`.

Production: `gunicorn paletai.main:app -k paletai.core.server.GuardedUvicornWorker`, DB_PATH set.
Locally: `paletai serve`, which starts the embedded database first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from paletai import __version__
from paletai.admin.router import router as admin_router
from paletai.auth.router import router as auth_router
from paletai.config import Settings, SettingsError, get_settings
from paletai.core import telemetry
from paletai.core.context import AppContext
from paletai.core.docs import install_docs
from paletai.core.errors import install_error_handlers
from paletai.core.health import router as health_router
from paletai.core.http_guards import install_http_guards
from paletai.core.logging import configure_logging
from paletai.core.maintenance import MaintenanceMiddleware
from paletai.core.runtime import open_context
from paletai.games.flows import game_workers
from paletai.games.router import router as games_router
from paletai.games.service import likes_repaired_in_background
from paletai.jobs.repository import TasksRepository
from paletai.jobs.router import router as tasks_router
from paletai.notifications.router import router as notifications_router
from paletai.storage.local import STATIC_PREFIX, LocalImageStore
from paletai.users.router import router as users_router
from paletai.web.router import install_web

log = logging.getLogger(__name__)

DESCRIPTION = """
PaletAI turns a prompt into a small playable HTML5 game, with a cover image, in a public feed.

**Try it:** register at `POST /auth/register`, press **Authorize** (your email as username),
`POST /games` with a prompt, poll `GET /tasks/{task_id}`, then open the game's `play_url`.
"""


async def _refresh_queue_depth(ctx: AppContext, every_seconds: float = 15.0) -> None:
    """Feed the queue-depth gauge (the metrics exporter reads it from another thread)."""
    depth = [0]
    telemetry.set_queue_depth_source(lambda: depth[0])
    repo = TasksRepository(ctx.db)
    while True:
        with contextlib.suppress(Exception):
            depth[0] = await repo.queue_depth()
        await asyncio.sleep(every_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with open_context(settings) as ctx, likes_repaired_in_background(ctx):
        app.state.ctx = ctx
        refresher = None
        if app.state.telemetry_on:
            refresher = asyncio.create_task(_refresh_queue_depth(ctx))
        workers = game_workers(ctx) if settings.WORKER_MODE == "inprocess" else None
        if workers is not None:
            ctx.workers = workers
            await workers.start()
        try:
            yield
        finally:
            if refresher is not None:
                refresher.cancel()
            if workers is not None:
                await workers.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL)
    telemetry_on = telemetry.configure(settings)
    app = FastAPI(
        title=settings.APP_NAME,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app, settings.APP_NAME)
    app.state.settings = settings
    app.state.telemetry_on = telemetry_on
    install_error_handlers(app)
    app.add_middleware(MaintenanceMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS,
        # Tokens travel in the Authorization header, not cookies: no credentials needed.
        allow_credentials=False,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["Retry-After", "Location"],
    )
    install_http_guards(app, settings)

    install_web(app)  # `/`: the console for browsers, the welcome object for API clients
    for router in (
        health_router,
        auth_router,
        games_router,
        tasks_router,
        notifications_router,
        users_router,
        admin_router,
    ):
        app.include_router(router)
    if not settings.uses_blob_storage:
        images = LocalImageStore(settings.data_dir / "game-images")
        app.mount(STATIC_PREFIX, StaticFiles(directory=images.directory), name="game-images")
    telemetry.instrument_app(app)
    return app


_default_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """`paletai.main:app`, built on first access (so importing this module has no effects)."""
    global _default_app
    if name != "app":
        raise AttributeError(name)
    if _default_app is None:
        try:
            _default_app = create_app()
        except SettingsError as exc:
            raise SystemExit(f"PaletAI cannot start, fix these settings:\n{exc}") from None
    return _default_app
