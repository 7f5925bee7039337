from __future__ import annotations

from pathlib import Path

import httpx

from paletai.db.embedded import EmbeddedMongo
from tests.conftest import make_settings, running_app


async def test_root_and_health(client: httpx.AsyncClient) -> None:
    root = await client.get("/")
    assert root.json()["docs"] == "/docs"
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["database"] == "healthy"
    assert body["api"] == "healthy"
    assert body["storage"] == "healthy"
    assert body["ai"] == "healthy"
    assert body["notifications"] == "not_configured"
    assert body["components"]["ai"]["provider"] == "offline"


async def test_health_is_503_naming_the_database_when_it_is_down(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path / "db")
    uri = server.start()
    settings = make_settings(uri, "healthdown", tmp_path / "data")
    try:
        async with running_app(settings) as (_, client):
            assert (await client.get("/health")).status_code == 200
            server.kill()
            response = await client.get("/health")
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == "unhealthy"
            assert body["database"] == "unhealthy"
            assert body["failing"] == ["database"]
            assert body["api"] == "healthy"
    finally:
        server.stop()


async def test_docs_and_openapi_have_oauth2_login(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    flow = next(iter(schemes.values()))["flows"]["password"]
    assert flow["tokenUrl"] == "/auth/login"
    login_body = spec["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login_body)


async def test_unknown_route_uses_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
