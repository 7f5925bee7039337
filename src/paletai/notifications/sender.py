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
    """OneSignal when both ONESIGNAL_APP_ID and ONESIGNAL_REST_API_KEY are set, else logging.

    `http` is the app's shared client (the lifespan owns it); without one, push stays off.
    """
    key = settings.ONESIGNAL_REST_API_KEY
    if settings.ONESIGNAL_APP_ID and key is not None and key.get_secret_value():
        if http is None:
            log.warning("push: OneSignal is configured but no HTTP client was given; sends skipped")
            return LoggingPushSender()
        from paletai.notifications.onesignal import OneSignalSender

        return OneSignalSender(settings.ONESIGNAL_APP_ID, key, settings.ONESIGNAL_API_URL, http)
    return LoggingPushSender()
