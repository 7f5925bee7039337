"""Cover images in Azure Blob Storage, served straight from the blob's public URL.

Two ways in: a connection string (the old app's AZURE_STORAGE_CONNECTION_STRING), or an account
URL plus the app's managed identity (AZURE_STORAGE_ACCOUNT_URL; no key anywhere). The container is
created on first use with anonymous read access to blobs, because the clients load the images by
URL without credentials.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from paletai.storage.base import HealthState, StorageError
from paletai.storage.local import check_name

log = logging.getLogger(__name__)

# Names (`<game_id>.png`, the card; `<game_id>-play.png`, the screenshot that replaces it) are
# never rewritten, so browsers and CDNs may keep them for good.
CACHE_CONTROL = "public, max-age=31536000, immutable"
PUBLIC_ACCESS_FIX = (
    'enable "Allow Blob anonymous access" on the storage account (portal: Configuration), or run '
    "`az storage account update --name <account> --resource-group <group> "
    "--allow-blob-public-access true`"
)


def public_url(url: str) -> str:
    """A blob or container URL without its query: a SAS from the connection string must never
    end up in a stored image URL."""
    return url.split("?", 1)[0]


def error_code(exc: HttpResponseError) -> str:
    """The storage error code (`ContainerNotFound`, ...), else the HTTP status."""
    # The storage SDK sets `error_code` on the exceptions it raises; azure-core does not type it.
    code = getattr(exc, "error_code", None)
    return str(code) if code else str(exc.status_code)


def is_public_access_refusal(exc: HttpResponseError) -> bool:
    """Whether Azure refused because the account forbids anonymous (public) access."""
    if error_code(exc).lower() == "publicaccessnotpermitted":
        return True
    return "public access is not permitted" in str(exc).lower()


async def ensure_public_container(container: ContainerClient) -> bool:
    """Create `container` with anonymous read access to blobs when it is missing.

    Returns whether blobs in it can be read anonymously. Raises StorageError, naming the fix,
    when the account forbids public access.
    """
    try:
        await container.create_container(public_access="blob")
        log.info("created blob container %s with public read access", public_url(container.url))
        return True
    except HttpResponseError as exc:
        # Both answers are 409 (ResourceExistsError): only "already exists" is fine.
        if is_public_access_refusal(exc):
            raise StorageError(
                f"cannot create container {container.container_name!r} with public read access: "
                f"the storage account {container.account_name!r} does not permit public access; "
                f"{PUBLIC_ACCESS_FIX}"
            ) from None
        if not (
            isinstance(exc, ResourceExistsError) and error_code(exc) == "ContainerAlreadyExists"
        ):
            raise
    props = await container.get_container_properties()
    if props.public_access in ("blob", "container"):
        return True
    log.warning(
        "blob container %s is private: image URLs will not load in the app; set its access level "
        "to 'Blob (anonymous read access for blobs only)', and if the account refuses, %s",
        public_url(container.url),
        PUBLIC_ACCESS_FIX,
    )
    return False


class AzureBlobImageStore:
    """ImageStore on one blob container; the returned URLs are the blobs' public URLs."""

    kind = "azure-blob"

    def __init__(
        self, service: BlobServiceClient, container: str, credential: Any | None = None
    ) -> None:
        self._service = service
        self._container = service.get_container_client(container)
        self._credential = credential  # closed with the store when we created it
        self._ready = False
        self._lock = asyncio.Lock()
        self._last_error: str | None = None

    @classmethod
    def from_connection_string(cls, connection_string: str, container: str) -> AzureBlobImageStore:
        try:
            service = BlobServiceClient.from_connection_string(connection_string)
        except ValueError as exc:
            # The SDK's message may quote the string; only say what is wrong with it.
            raise StorageError(
                f"AZURE_STORAGE_CONNECTION_STRING is not a valid storage connection string "
                f"({type(exc).__name__})"
            ) from None
        return cls(service, container)

    @classmethod
    def from_account_url(cls, account_url: str, container: str) -> AzureBlobImageStore:
        """Managed identity (or any DefaultAzureCredential source); the identity needs the
        'Storage Blob Data Contributor' role on the account or container."""
        from azure.identity.aio import DefaultAzureCredential

        credential = DefaultAzureCredential()
        return cls(BlobServiceClient(account_url, credential=credential), container, credential)

    @property
    def container_url(self) -> str:
        return public_url(self._container.url)

    async def ensure_container(self) -> None:
        """Create the container (public read for blobs) if needed; runs once per store."""
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            try:
                await ensure_public_container(self._container)
            except ClientAuthenticationError as exc:
                raise StorageError(self._auth_message(exc)) from None
            except HttpResponseError as exc:
                if exc.status_code == 403:
                    raise StorageError(self._auth_message(exc)) from None
                raise StorageError(
                    f"cannot prepare blob container {self.container_url}: {error_code(exc)}"
                ) from None
            except AzureError as exc:  # e.g. the account's host does not answer
                raise StorageError(
                    f"cannot reach blob container {self.container_url}: {type(exc).__name__}"
                ) from None
            self._ready = True

    def _auth_message(self, exc: Exception) -> str:
        return (
            f"not authorized on blob container {self.container_url} ({type(exc).__name__}): "
            "check the account key in AZURE_STORAGE_CONNECTION_STRING, or give the app's managed "
            "identity the 'Storage Blob Data Contributor' role on the storage account"
        )

    async def save_png(self, name: str, data: bytes) -> str:
        blob = self._container.get_blob_client(check_name(name))
        await self.ensure_container()
        try:
            await blob.upload_blob(
                data,
                overwrite=True,
                content_settings=ContentSettings(
                    content_type="image/png", cache_control=CACHE_CONTROL
                ),
            )
        except ClientAuthenticationError as exc:
            self._last_error = type(exc).__name__
            raise StorageError(self._auth_message(exc)) from None
        except HttpResponseError as exc:
            self._last_error = error_code(exc)
            if exc.status_code == 403:
                raise StorageError(self._auth_message(exc)) from None
            raise StorageError(f"upload of {name} failed: {self._last_error}") from None
        except AzureError as exc:
            self._last_error = type(exc).__name__
            raise StorageError(f"upload of {name} failed: {self._last_error}") from None
        self._last_error = None
        return public_url(blob.url)

    async def delete(self, name: str) -> None:
        blob = self._container.get_blob_client(check_name(name))
        try:
            await blob.delete_blob(delete_snapshots="include")
        except ResourceNotFoundError:
            return

    async def check(self) -> HealthState:
        """healthy when the container answers and is publicly readable and the last upload (if
        any) worked; degraded otherwise."""
        if self._last_error is not None:
            return "degraded"
        try:
            props = await self._container.get_container_properties()
        except ResourceNotFoundError:
            # Created on the first upload; the account itself answered.
            return "healthy"
        except Exception:  # noqa: BLE001 - any failure is reported as a state, never raised
            return "degraded"
        if props.public_access not in ("blob", "container"):
            return "degraded"
        return "healthy"

    async def aclose(self) -> None:
        await self._service.close()
        if self._credential is not None:
            await self._credential.close()
