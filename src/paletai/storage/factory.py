"""Choose the image store from the settings."""

from __future__ import annotations

from paletai.config import Settings
from paletai.storage.base import ImageStore
from paletai.storage.local import LocalImageStore


def make_image_store(settings: Settings) -> ImageStore:
    """Local files unless blob storage is configured (and IS_LOCAL_ENV is false).

    A connection string wins over AZURE_STORAGE_ACCOUNT_URL (managed identity), as in the old app.
    """
    if settings.uses_blob_storage:
        from paletai.storage.azure_blob import AzureBlobImageStore

        container = settings.AZURE_STORAGE_CONTAINER
        if settings.AZURE_STORAGE_CONNECTION_STRING is not None:
            conn = settings.AZURE_STORAGE_CONNECTION_STRING.get_secret_value()
            if conn.strip():
                return AzureBlobImageStore.from_connection_string(conn, container)
        account_url = settings.AZURE_STORAGE_ACCOUNT_URL
        if account_url:
            return AzureBlobImageStore.from_account_url(account_url, container)
    return LocalImageStore(
        settings.data_dir / "game-images", base_url=settings.PUBLIC_BASE_URL or ""
    )
