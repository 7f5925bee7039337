"""What the lifespan creates and the request handlers and workers share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import httpx

from paletai.config import Settings
from paletai.core.maintenance import MaintenanceState
from paletai.core.security import PasswordHashing, Refusals, default_hash_slots
from paletai.db.client import Client, Database
from paletai.generation.providers.base import GameProvider
from paletai.notifications.base import PushSender
from paletai.storage.base import ImageStore
from paletai.users.cache import UserCache


class LocalWorkers(Protocol):
    """What the API asks of the workers running in its own process (none in external mode)."""

    @property
    def busy(self) -> int:
        """Tasks running now."""
        ...

    def wake(self) -> None:
        """A task was queued: look now rather than at the next poll."""
        ...


@dataclass
class AppContext:
    settings: Settings
    client: Client
    db: Database
    store: ImageStore
    push: PushSender
    http: httpx.AsyncClient
    provider: GameProvider
    jwt_secret: str
    maintenance: MaintenanceState
    workers: LocalWorkers | None = None
    users: UserCache = field(default_factory=UserCache)
    # Throttle keys this process refused lately (answered without a database round trip).
    refusals: Refusals = field(default_factory=Refusals)
    passwords: PasswordHashing = field(
        default_factory=lambda: PasswordHashing(default_hash_slots(), wait_seconds=2.0)
    )
