"""Choose the image store from the settings."""

from __future__ import annotations

from paletai.config import Settings
from paletai.storage.base import ImageStore
from paletai.storage.local import LocalImageStore


def make_image_store(settings: Settings) -> ImageStore:
    """Local files unless blob storage is configured (and IS_LOCAL_ENV is false)."""
    return LocalImageStore(
        settings.data_dir / "game-images", base_url=settings.PUBLIC_BASE_URL or ""
    )
