"""AzureBlobImageStore against Azurite: the URLs it returns must load anonymously."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
from azure.storage.blob.aio import BlobServiceClient
from PIL import Image

from paletai.config import Settings
from paletai.storage.azure_blob import CACHE_CONTROL, AzureBlobImageStore
from paletai.storage.base import StorageError
from paletai.storage.factory import make_image_store
from paletai.storage.local import LocalImageStore
from tests.fixtures.cloud import DEV_ACCOUNT, DEV_KEY, free_port


def png_bytes(color: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
async def store(azurite: str, container_name: str) -> AsyncIterator[AzureBlobImageStore]:
    image_store = AzureBlobImageStore.from_connection_string(azurite, container_name)
    yield image_store
    await image_store.aclose()


async def test_upload_returns_public_url_readable_anonymously(
    store: AzureBlobImageStore, container_name: str
) -> None:
    data = png_bytes()
    url = await store.save_png("game1.png", data)

    assert url == f"{store.container_url}/game1.png"
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == CACHE_CONTROL


async def test_container_is_created_with_public_blob_access(
    store: AzureBlobImageStore, azurite: str, container_name: str
) -> None:
    async with BlobServiceClient.from_connection_string(azurite) as service:
        container = service.get_container_client(container_name)
        assert not await container.exists()
        await store.ensure_container()
        props = await container.get_container_properties()
    assert props.public_access == "blob"
    assert await store.check() == "healthy"


async def test_overwrite_and_delete(store: AzureBlobImageStore) -> None:
    url = await store.save_png("game2.png", png_bytes("red"))
    await store.save_png("game2.png", png_bytes("blue"))
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(url)).content == png_bytes("blue")
        await store.delete("game2.png")
        assert (await anonymous.get(url)).status_code == 404
    await store.delete("game2.png")  # a missing name is not an error


async def test_unsafe_names_are_refused(store: AzureBlobImageStore) -> None:
    with pytest.raises(StorageError):
        await store.save_png("../escape.png", png_bytes())


async def test_existing_private_container_is_reported_degraded(
    azurite: str, container_name: str
) -> None:
    async with BlobServiceClient.from_connection_string(azurite) as service:
        await service.create_container(container_name)  # private
    image_store = AzureBlobImageStore.from_connection_string(azurite, container_name)
    try:
        # Uploads still work (the images are kept), but they cannot load in the app.
        url = await image_store.save_png("game3.png", png_bytes())
        assert await image_store.check() == "degraded"
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(url)).status_code in (403, 404)
    finally:
        await image_store.aclose()


async def test_sas_connection_string_never_leaks_into_urls(
    azurite: str, container_name: str
) -> None:
    sas = generate_account_sas(
        DEV_ACCOUNT,
        DEV_KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, create=True, delete=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    endpoint = azurite.split("BlobEndpoint=")[1].rstrip(";")
    image_store = AzureBlobImageStore.from_connection_string(
        f"BlobEndpoint={endpoint};SharedAccessSignature={sas}", container_name
    )
    try:
        url = await image_store.save_png("game4.png", png_bytes())
    finally:
        await image_store.aclose()
    assert "?" not in url
    assert "sig=" not in url
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(url)).status_code == 200


async def test_unreachable_account_is_degraded_and_a_storage_error(container_name: str) -> None:
    port = free_port()  # nothing listens there
    service = BlobServiceClient(
        f"http://127.0.0.1:{port}/{DEV_ACCOUNT}", credential=None, retry_total=0
    )
    image_store = AzureBlobImageStore(service, container_name)
    try:
        assert await image_store.check() == "degraded"
        with pytest.raises(StorageError, match="cannot reach blob container"):
            await image_store.save_png("game6.png", png_bytes())
    finally:
        await image_store.aclose()


@pytest.fixture
async def refusing_account() -> AsyncIterator[str]:
    """A storage endpoint that answers like an account with public access disabled."""

    async def refuse(request: web.Request) -> web.Response:
        body = (
            '<?xml version="1.0" encoding="utf-8"?><Error><Code>PublicAccessNotPermitted</Code>'
            "<Message>Public access is not permitted on this storage account.</Message></Error>"
        )
        return web.Response(
            status=409,
            text=body,
            content_type="application/xml",
            headers={"x-ms-error-code": "PublicAccessNotPermitted"},
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )
    await runner.cleanup()


async def test_public_access_refusal_says_what_to_fix(refusing_account: str) -> None:
    image_store = AzureBlobImageStore.from_connection_string(refusing_account, "game-images")
    try:
        with pytest.raises(StorageError) as info:
            await image_store.save_png("game5.png", png_bytes())
    finally:
        await image_store.aclose()
    message = str(info.value)
    assert "does not permit public access" in message
    assert "Allow Blob anonymous access" in message
    assert "--allow-blob-public-access true" in message
    assert DEV_KEY not in message


def _settings(**values: object) -> Settings:
    base: dict[str, object] = {
        "IS_LOCAL_ENV": False,
        "AZURE_STORAGE_CONNECTION_STRING": None,
        "AZURE_STORAGE_ACCOUNT_URL": None,
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


async def test_factory_chooses_the_store(azurite: str, tmp_path: Path) -> None:
    blob = make_image_store(_settings(AZURE_STORAGE_CONNECTION_STRING=azurite))
    assert isinstance(blob, AzureBlobImageStore)
    assert blob.kind == "azure-blob"
    await blob.aclose()

    managed = make_image_store(
        _settings(AZURE_STORAGE_ACCOUNT_URL="https://example.blob.core.windows.net")
    )
    assert isinstance(managed, AzureBlobImageStore)
    assert managed.container_url == "https://example.blob.core.windows.net/game-images"
    await managed.aclose()

    local = make_image_store(
        _settings(
            AZURE_STORAGE_CONNECTION_STRING=azurite, IS_LOCAL_ENV=True, PALETAI_DATA_DIR=tmp_path
        )
    )
    assert isinstance(local, LocalImageStore)
