"""The whole app with its cloud parts on their emulators: cover images in Azure Blob Storage
(Azurite) and pushes to OneSignal (a fake on a real socket). This is the checklist's "Test Image
Storage" and "Test Push Notifications", as written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from azure.storage.blob.aio import BlobServiceClient

from paletai.config import Settings
from tests.conftest import create_user, generate_game, running_app, wait_for_task
from tests.fixtures.cloud import FakeOneSignal

APP_ID = "0c6d2b66-6c4b-4b8e-9d51-3c0a7a1f0001"
KEY = "os_v2_app_e2e-test-key"


async def test_game_cover_lives_in_blob_storage_and_push_arrives(
    settings_with: Callable[..., Settings],
    azurite: str,
    container_name: str,
    onesignal: FakeOneSignal,
) -> None:
    settings = settings_with(
        IS_LOCAL_ENV=False,
        AZURE_STORAGE_CONNECTION_STRING=azurite,
        AZURE_STORAGE_CONTAINER=container_name,
        ONESIGNAL_APP_ID=APP_ID,
        ONESIGNAL_REST_API_KEY=KEY,
        ONESIGNAL_API_URL=onesignal.base_url,
    )
    async with running_app(settings) as (_, client):
        health = (await client.get("/health")).json()
        assert health["storage"] == "healthy"
        assert health["components"]["storage"]["kind"] == "azure-blob"
        assert health["notifications"] == "healthy"

        user = await create_user(client)
        r = await client.post(
            "/notifications/subscribe", json={"player_id": "device-1"}, headers=user.headers
        )
        assert r.json() == {"subscribed": True}
        task_id = (
            await client.post(
                "/games", json={"prompt": "Create a simple snake game"}, headers=user.headers
            )
        ).json()["task_id"]
        task = await wait_for_task(client, user, task_id)
        assert task["status"] == "succeeded", task
        game = (await client.get(f"/games/{task['game_id']}")).json()

        # "Verified game has image URL" on the blob endpoint of the storage account ...
        image_url = game["image_url"]
        assert image_url.startswith(azurite_blob_endpoint(azurite))
        assert f"/{container_name}/" in image_url
        # ... "Image URL accessible", anonymously, as a browser would load it.
        async with httpx.AsyncClient() as anonymous:
            image = await anonymous.get(image_url)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert image.content.startswith(b"\x89PNG")
        # "Listed blobs ... At least one blob exists".
        async with BlobServiceClient.from_connection_string(azurite) as service:
            container = service.get_container_client(container_name)
            names = [b.name async for b in container.list_blobs()]
        assert f"{game['id']}.png" in names

        # The creator's device got "Your game is ready".
        (path, headers, body) = onesignal.requests[-1]
        assert headers["Authorization"] == f"Key {KEY}"
        assert body["app_id"] == APP_ID
        assert body["include_subscription_ids"] == ["device-1"]
        assert "ready" in body["headings"]["en"].lower()
        assert body["data"]["game_id"] == game["id"]

        # Deleting the game deletes its blob.
        assert (
            await client.delete(f"/games/{game['id']}", headers=user.headers)
        ).status_code == 204
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(image_url)).status_code == 404


async def test_a_down_push_service_does_not_fail_the_game(
    settings_with: Callable[..., Settings], onesignal: FakeOneSignal
) -> None:
    onesignal.script = [(500, {"errors": ["down"]}, {})] * 10
    settings = settings_with(
        ONESIGNAL_APP_ID=APP_ID, ONESIGNAL_REST_API_KEY=KEY, ONESIGNAL_API_URL=onesignal.base_url
    )
    async with running_app(settings) as (_, client):
        user = await create_user(client)
        await client.post(
            "/notifications/subscribe", json={"player_id": "device-2"}, headers=user.headers
        )
        await generate_game(client, user, "pong")
        # The push is sent after the task is marked done: wait for its three attempts.
        for _ in range(200):
            if len(onesignal.requests) >= 3:
                break
            await asyncio.sleep(0.05)
        assert len(onesignal.requests) == 3  # tried, and retried twice
        health = (await client.get("/health")).json()
        assert health["status"] == "healthy"
        assert health["notifications"] == "degraded"


def azurite_blob_endpoint(connection_string: str) -> str:
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return parts["BlobEndpoint"].rstrip("/")
