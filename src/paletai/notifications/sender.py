"""Push senders. Without OneSignal keys, sends are logged and skipped."""

from __future__ import annotations

import logging

import httpx

from paletai.config import Settings
from paletai.notifications.base import HealthState, PushSender

log = logging.getLogger(__name__)


class LoggingPushSender:
    """Used when ONESIGNAL_APP_ID / ONESIGNAL_REST_API_KEY are not set."""

    configured = False

    async def send(
        self, player_ids: list[str], heading: str, message: str, data: dict[str, str]
    ) -> bool:
        log.info("push not configured; skipped %r to %d subscription(s)", heading, len(player_ids))
        return False

    async def check(self) -> HealthState:
        return "not_configured"

    async def aclose(self) -> None:
        return None


def make_push_sender(settings: Settings, http: httpx.AsyncClient | None = None) -> PushSender:
    return LoggingPushSender()
