"""What the lifespan creates and the request handlers and workers share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from paletai.config import Settings
from paletai.core.security import PasswordHashing, default_hash_slots
from paletai.db.client import Client, Database
from paletai.generation.providers.base import GameProvider
from paletai.notifications.base import PushSender
from paletai.storage.base import ImageStore
from paletai.users.cache import UserCache

if TYPE_CHECKING:
    from paletai.jobs.worker import WorkerPool


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
    workers: WorkerPool | None = None
    users: UserCache = field(default_factory=UserCache)
    passwords: PasswordHashing = field(
        default_factory=lambda: PasswordHashing(default_hash_slots(), wait_seconds=2.0)
    )
    extras: dict[str, Any] = field(default_factory=dict)
