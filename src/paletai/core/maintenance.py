"""The maintenance switch: while on, writes answer 503 with Retry-After and reads go on.

The cutover (`paletai db cutover`) turns it on to stop writes on the old side. The state lives in
MongoDB so every worker process of the app sees it; each process re-reads it at most every
`CACHE_SECONDS`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pymongo.errors import ConnectionFailure
from starlette.types import ASGIApp, Receive, Scope, Send

from paletai.core.errors import DatabaseUnavailable, error_response
from paletai.db.client import Database
from paletai.db.updates import stamp

CACHE_SECONDS = 0.5
RETRY_AFTER_SECONDS = 30
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Still allowed in maintenance: the switch itself, and logins (a token needs no write).
ALWAYS_ALLOWED = ("/admin/", "/auth/login")


class MaintenanceState:
    def __init__(self, db: Database) -> None:
        self.collection = db["service_state"]
        self._cached: tuple[float, bool] = (0.0, False)

    async def is_on(self, *, fresh: bool = False) -> bool:
        """Whether writes are paused; `fresh` reads the flag now instead of the cached copy."""
        checked_at, value = self._cached
        if not fresh and time.monotonic() - checked_at < CACHE_SECONDS:
            return value
        doc = await self.collection.find_one({"_id": "maintenance"})
        value = bool(doc and doc.get("enabled"))
        self._cached = (time.monotonic(), value)
        return value

    async def set(self, enabled: bool, reason: str | None = None) -> None:
        await self.collection.update_one(
            {"_id": "maintenance"},
            {"$set": {"enabled": enabled, "reason": reason}, **stamp("changed_at")},
            upsert=True,
        )
        self._cached = (time.monotonic(), enabled)

    async def describe(self) -> dict[str, Any]:
        doc = await self.collection.find_one({"_id": "maintenance"}) or {}
        changed = doc.get("changed_at")
        return {
            "maintenance": bool(doc.get("enabled")),
            "reason": doc.get("reason"),
            "changed_at": changed.isoformat() if changed else None,
        }


class MaintenanceMiddleware:
    """Pure ASGI, so reads pay one dictionary lookup and nothing else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in WRITE_METHODS
            and not scope["path"].startswith(ALWAYS_ALLOWED)
        ):
            state: MaintenanceState = scope["app"].state.ctx.maintenance
            try:
                maintenance = await state.is_on()
            except ConnectionFailure:
                # This middleware sits outside the app's error handlers: answer as they would.
                await error_response(DatabaseUnavailable())(scope, receive, send)
                return
            if maintenance:
                body = json.dumps(
                    {
                        "error": {
                            "code": "maintenance",
                            "message": "PaletAI is in maintenance (a database move); "
                            "reads work, writes are paused: retry in a moment",
                        }
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
