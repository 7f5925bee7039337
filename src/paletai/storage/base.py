"""Where cover images live: local files (embedded default) or Azure Blob Storage."""

from __future__ import annotations

from typing import Literal, Protocol

HealthState = Literal["healthy", "degraded", "not_configured"]


class StorageError(Exception):
    """Storage refused or failed; the message names what to fix."""


class ImageStore(Protocol):
    kind: str  # "local" | "azure-blob"

    async def save_png(self, name: str, data: bytes) -> str:
        """Store `data` under `name` (e.g. `<game_id>.png`) and return its public URL."""
        ...

    async def delete(self, name: str) -> None:
        """Remove `name`; a missing name is not an error."""
        ...

    async def check(self) -> HealthState: ...

    async def aclose(self) -> None: ...
