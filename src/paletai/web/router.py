"""The web console: `/` for browsers, the share page `/g/{id}`, and the console's static files.

The console is plain ES modules and CSS from this folder (nothing to build, no external
requests). API clients asking `/` for JSON still get the welcome object.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from paletai import __version__
from paletai.core.deps import CtxDep, base_url
from paletai.games import service
from paletai.games.repository import GamesRepository
from paletai.games.schemas import GameId

WEB_PREFIX = "/web"
# Only the static/ folder is served: never this package's Python files.
WEB_DIR = Path(str(resources.files("paletai") / "web" / "static"))

router = APIRouter()


def image_origin(store: object) -> str | None:
    """The blob container's origin, when covers live in blob storage (for img-src)."""
    container_url = getattr(store, "container_url", None)
    if not isinstance(container_url, str):
        return None
    parts = urlsplit(container_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def page_headers(request: Request) -> dict[str, str]:
    """A strict CSP for the console's own pages: own scripts only, games framed from us only."""
    img = "'self' data:"
    origin = image_origin(request.app.state.ctx.store)
    if origin:
        img = f"'self' {origin} data:"
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Vary": "Accept",
    }


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


@router.get("/", tags=["health"], response_model=None)
async def root(request: Request) -> Response:
    """Welcome: the console for browsers; the service's name, version and docs for API clients."""
    if wants_html(request):
        console = (WEB_DIR / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(console, headers=page_headers(request))
    settings = request.app.state.settings
    return JSONResponse(
        {"name": settings.APP_NAME, "version": __version__, "docs": "/docs"},
        headers={"Vary": "Accept"},
    )


def _share_page(title: str, head: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<link rel="stylesheet" href="{WEB_PREFIX}/style.css">
{head}
</head>
<body class="share">
<header class="topbar"><a class="brand" href="/">PaletAI</a></header>
<main class="share-main">
{body}
</main>
</body>
</html>
"""


@router.get("/g/{game_id}", response_class=HTMLResponse, include_in_schema=False)
async def share_page(game_id: GameId, request: Request, ctx: CtxDep) -> HTMLResponse:
    """A game's share page: server-rendered, with Open Graph and Twitter card tags."""
    found = await GamesRepository(ctx.db).get(game_id)
    if found is None:
        body = (
            '<section class="card share-card"><h1>Game not found</h1>'
            "<p>This game does not exist or was deleted by its author.</p>"
            '<p><a class="button primary" href="/">Browse the feed</a></p></section>'
        )
        return HTMLResponse(
            _share_page("Game not found · PaletAI", "", body),
            status_code=404,
            headers=page_headers(request),
        )
    game = (await service.shape(ctx, [found], None, base_url(request)))[0]
    e = html.escape  # every value from the database is escaped, attributes included
    page_url = f"{base_url(request)}/g/{game.id}"
    tags = [
        ("property", "og:type", "website"),
        ("property", "og:site_name", "PaletAI"),
        ("property", "og:title", game.title),
        ("property", "og:description", game.description),
        ("property", "og:url", page_url),
        ("name", "twitter:card", "summary_large_image" if game.image_url else "summary"),
        ("name", "twitter:title", game.title),
        ("name", "twitter:description", game.description),
    ]
    if game.image_url:
        tags += [
            ("property", "og:image", game.image_url),
            ("name", "twitter:image", game.image_url),
        ]
    head = "\n".join(
        f'<meta {kind}="{e(name)}" content="{e(value)}">' for kind, name, value in tags
    )
    head += f'\n<meta name="description" content="{e(game.description)}">'
    cover = (
        f'<img class="share-cover" src="{e(game.image_url)}" alt="Cover of {e(game.title)}">'
        if game.image_url
        else f'<div class="share-cover placeholder" aria-hidden="true">{e(game.title[:1])}</div>'
    )
    body = (
        f'<article class="card share-card">{cover}'
        f"<h1>{e(game.title)}</h1>"
        f'<p class="meta">by {e(game.author.username)} · ♥ {game.likes_count}</p>'
        f"<p>{e(game.description)}</p>"
        f'<p><a class="button primary big" href="/#/play/{e(game.id)}">▶ Play</a></p>'
        "</article>"
    )
    return HTMLResponse(
        _share_page(f"{game.title} · PaletAI", head, body), headers=page_headers(request)
    )


class ConsoleFiles(StaticFiles):
    """The console's scripts and styles, never sniffed into another type."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install_web(app: FastAPI) -> None:
    """Mount the console: its pages and its static files."""
    app.include_router(router)
    app.mount(WEB_PREFIX, ConsoleFiles(directory=WEB_DIR), name="web")
