"""Push through OneSignal's REST API (POST {api_url}/notifications).

Current API (https://api.onesignal.com, the default ONESIGNAL_API_URL): the App API key goes in
`Authorization: Key <key>`, targets are `include_subscription_ids`, and `idempotency_key` makes a
retried request send once. An old app's setting may still point at the legacy
`https://onesignal.com/api/v1`: there the old scheme is kept (`Authorization: Basic <key>`,
`include_player_ids`, `external_id` as the idempotency key), so the exported settings keep working.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Any

import httpx
from pydantic import SecretStr

from paletai.notifications.base import HealthState

log = logging.getLogger(__name__)

MAX_IDS_PER_REQUEST = 2000  # OneSignal's limit for include_subscription_ids


class OneSignalSender:
    """PushSender for OneSignal; the shared httpx client belongs to the app's lifespan."""

    configured = True

    def __init__(
        self,
        app_id: str,
        rest_api_key: str | SecretStr,
        api_url: str,
        http: httpx.AsyncClient,
        *,
        attempts: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        timeout: float = 10.0,
    ) -> None:
        self.app_id = app_id
        key = (
            rest_api_key.get_secret_value() if isinstance(rest_api_key, SecretStr) else rest_api_key
        )
        self.api_url = api_url.rstrip("/")
        self.legacy = "/api/v1" in self.api_url
        scheme = "Basic" if self.legacy else "Key"
        # Kept only inside the headers dict; never formatted into a log line or an error.
        self._headers = {"Authorization": f"{scheme} {key}", "Accept": "application/json"}
        self._http = http
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.last_ok: bool | None = None

    def payload(
        self, player_ids: list[str], heading: str, message: str, data: dict[str, str]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "app_id": self.app_id,
            "headings": {"en": heading},
            "contents": {"en": message},
            "data": data,
        }
        if self.legacy:
            body["include_player_ids"] = player_ids
            body["external_id"] = str(uuid.uuid4())
        else:
            body["target_channel"] = "push"
            body["include_subscription_ids"] = player_ids
            body["idempotency_key"] = str(uuid.uuid4())
        return body

    async def send(
        self, player_ids: list[str], heading: str, message: str, data: dict[str, str]
    ) -> bool:
        """Send to these subscription ids; False (never an exception) when it did not go out."""
        ids = [p for p in dict.fromkeys(player_ids) if p]
        if not ids:
            return False
        ok = True
        for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
            chunk = ids[start : start + MAX_IDS_PER_REQUEST]
            try:
                ok = await self._post(self.payload(chunk, heading, message, data)) and ok
            except Exception:  # noqa: BLE001 - a push must never fail the caller
                log.exception("onesignal: unexpected error while sending %r", heading)
                ok = False
        self.last_ok = ok
        return ok

    async def _post(self, body: dict[str, Any]) -> bool:
        url = f"{self.api_url}/notifications"
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                response = await self._http.post(
                    url, json=body, headers=self._headers, timeout=self.timeout
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"
            else:
                if response.is_success:
                    return self._accepted(response)
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code != 429 and response.status_code < 500:
                    # 400/401/403...: the request itself is wrong; retrying will not help.
                    log.warning("onesignal: notification refused, %s", problem)
                    return False
                retry_after = _retry_after(response)
            if attempt == self.attempts:
                log.warning(
                    "onesignal: notification not sent after %d attempts, %s", attempt, problem
                )
                return False
            delay = self._backoff(attempt, retry_after)
            log.info(
                "onesignal: attempt %d failed (%s); retrying in %.2f s", attempt, problem, delay
            )
            await asyncio.sleep(delay)
        return False

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with (equal) jitter; a server's Retry-After wins (capped)."""
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        jitter: float = random.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter

    @staticmethod
    def _accepted(response: httpx.Response) -> bool:
        try:
            body = response.json()
        except ValueError:
            return True
        if isinstance(body, dict) and not body.get("id") and body.get("errors"):
            # 200 with no id: nobody to deliver to (e.g. every id unsubscribed).
            log.info("onesignal: notification not delivered: %s", str(body["errors"])[:300])
            return False
        return True

    async def check(self) -> HealthState:
        """No network call: healthy, or degraded when the last send failed."""
        return "degraded" if self.last_ok is False else "healthy"

    async def aclose(self) -> None:
        return None  # the shared httpx client is closed by its owner


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
