"""Push sending. Sends never fail a request or a task: they log and report False."""

from __future__ import annotations

from typing import Literal, Protocol

HealthState = Literal["healthy", "degraded", "not_configured"]


class PushSender(Protocol):
    configured: bool

    async def send(
        self, player_ids: list[str], heading: str, message: str, data: dict[str, str]
    ) -> bool:
        """Send one notification to these OneSignal player (subscription) ids."""
        ...

    async def check(self) -> HealthState: ...

    async def aclose(self) -> None: ...
