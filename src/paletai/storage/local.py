"""Cover images as files under the data dir, served by the app at /static/game-images/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio

from paletai.storage.base import HealthState, StorageError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
STATIC_PREFIX = "/static/game-images"


def check_name(name: str) -> str:
    if not _SAFE_NAME.match(name) or ".." in name:
        raise StorageError(f"invalid image name {name!r}")
    return name


class LocalImageStore:
    kind = "local"

    def __init__(self, directory: Path, base_url: str = "") -> None:
        self.directory = directory
        self.base_url = base_url.rstrip("/")
        self.directory.mkdir(parents=True, exist_ok=True)

    def url_for(self, name: str) -> str:
        return f"{self.base_url}{STATIC_PREFIX}/{name}"

    async def save_png(self, name: str, data: bytes) -> str:
        path = self.directory / check_name(name)
        tmp = path.with_suffix(path.suffix + ".tmp")

        def write() -> None:
            # Write then rename, so a crash never leaves a half-written image behind its URL.
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)

        await anyio.to_thread.run_sync(write)
        return self.url_for(name)

    async def delete(self, name: str) -> None:
        path = self.directory / check_name(name)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def check(self) -> HealthState:
        return "healthy" if os.access(self.directory, os.W_OK) else "degraded"

    async def aclose(self) -> None:
        return None
