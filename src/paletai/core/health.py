"""GET /health: liveness plus each dependency's state. Only the database makes it 503."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from paletai import __version__
from paletai.core.deps import CtxDep

router = APIRouter(tags=["health"])

DB_TIMEOUT_SECONDS = 3.0
PART_TIMEOUT_SECONDS = 2.0


async def _timed(coro: Any, limit: float) -> tuple[str, float, str | None]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            state = await coro
        return str(state), (time.perf_counter() - started) * 1000, None
    except TimeoutError:
        return "degraded", (time.perf_counter() - started) * 1000, f"no answer in {limit:.0f} s"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return "degraded", (time.perf_counter() - started) * 1000, type(exc).__name__


@router.get(
    "/health",
    responses={503: {"description": "the database is unreachable"}},
)
async def health(ctx: CtxDep) -> JSONResponse:
    """Liveness and dependencies: `status` is healthy unless the database is down (503)."""

    async def ping() -> str:
        await ctx.client.admin.command("ping")
        return "healthy"

    results = await asyncio.gather(
        _timed(ping(), DB_TIMEOUT_SECONDS),
        _timed(ctx.store.check(), PART_TIMEOUT_SECONDS),
        _timed(ctx.provider.check(), PART_TIMEOUT_SECONDS),
        _timed(ctx.push.check(), PART_TIMEOUT_SECONDS),
    )
    (db_state, db_ms, db_err), storage, ai, push = results
    if db_state != "healthy":
        db_state = "unhealthy"
    components: dict[str, Any] = {
        "database": {"status": db_state, "latency_ms": round(db_ms, 1), "error": db_err},
        "storage": {"status": storage[0], "kind": ctx.store.kind, "error": storage[2]},
        "ai": {"status": ai[0], "provider": ctx.provider.name, "model": ctx.provider.model},
        "notifications": {"status": push[0]},
        "workers": {
            "mode": ctx.settings.WORKER_MODE,
            "busy": ctx.workers.busy if ctx.workers else None,
        },
    }
    healthy = db_state == "healthy"
    body: dict[str, Any] = {
        "status": "healthy" if healthy else "unhealthy",
        "database": db_state,
        "api": "healthy",
        "storage": storage[0],
        "ai": ai[0],
        "notifications": push[0],
        "version": __version__,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "components": components,
    }
    if not healthy:
        body["failing"] = ["database"]
    return JSONResponse(body, status_code=200 if healthy else 503)
