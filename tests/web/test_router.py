"""The console's server side: content negotiation at `/`, headers, static files, share page."""

from __future__ import annotations

import re

import httpx

from paletai.core.context import AppContext
from paletai.web.router import image_origin
from tests.conftest import create_game, create_user

HOSTILE = '<script>alert(1)</script>" onload="x'


async def test_api_clients_get_the_welcome_object(client: httpx.AsyncClient) -> None:
    for accept in ("application/json", "*/*"):
        response = await client.get("/", headers={"Accept": accept})
        assert response.status_code == 200
        assert response.json()["docs"] == "/docs"
        assert "Accept" in response.headers["vary"]


async def test_browsers_get_the_console_with_a_strict_csp(client: httpx.AsyncClient) -> None:
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = await client.get("/", headers={"Accept": browser_accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    for part in (
        "default-src 'self'",
        "script-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "frame-ancestors 'none'",
    ):
        assert part in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    # No inline script: every <script> loads a file of ours.
    scripts = re.findall(r"<script[^>]*>", response.text)
    assert scripts == ['<script type="module" src="/web/app.js">']
    assert "http://" not in response.text
    assert "https://" not in response.text


def test_img_src_names_the_blob_origin() -> None:
    class BlobStore:
        container_url = "https://acct.blob.core.windows.net/game-images"

    assert image_origin(BlobStore()) == "https://acct.blob.core.windows.net"
    assert image_origin(object()) is None


async def test_static_files_are_served_and_not_sniffed(client: httpx.AsyncClient) -> None:
    for name, kind in (("app.js", "javascript"), ("api.js", "javascript"), ("style.css", "css")):
        response = await client.get(f"/web/{name}")
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/web/../router.py")).status_code == 404
    assert (await client.get("/web/router.py")).status_code == 404  # only static/ is served


async def test_share_page_escapes_and_tags(client: httpx.AsyncClient, ctx: AppContext) -> None:
    author = await create_user(client)
    game_id = await create_game(
        ctx.db,
        author,
        title=HOSTILE,
        description="desc " + HOSTILE,
        image_url="/static/game-images/cover.png",
    )
    response = await client.get(f"/g/{game_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot; onload=&quot;x" in page
    assert "<script" not in page
    image = "http://testserver/static/game-images/cover.png"
    assert f'<meta property="og:image" content="{image}">' in page
    assert '<meta name="twitter:card" content="summary_large_image">' in page
    assert f'href="/#/play/{game_id}"' in page


async def test_share_page_without_a_cover(client: httpx.AsyncClient, ctx: AppContext) -> None:
    game_id = await create_game(ctx.db, title="Plain")
    page = (await client.get(f"/g/{game_id}")).text
    assert "og:image" not in page
    assert '<meta name="twitter:card" content="summary">' in page


async def test_share_page_of_an_unknown_game_is_a_404_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/g/no-such-game")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Game not found" in response.text
