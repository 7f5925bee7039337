"""Headless Chromium for the pipeline: the playability check and the screenshot covers.

One `GameBrowser` per worker process: the browser starts on first use, is reused across tasks
and is started again when it died. Playwright's async API drives it (its driver is its own
process), so the event loop never blocks on rendering. A game runs as on the play page: under
the play page's CSP sandbox (never `allow-same-origin`), with every request other than the game
itself refused, so it can reach no network.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import anyio
from PIL import Image

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright, Route

log = logging.getLogger(__name__)

# The play page's policy (games/router.py serves games with it): the game is untrusted code.
PLAY_CSP = (
    "sandbox allow-scripts; default-src 'none'; "
    "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "connect-src 'none'; form-action 'none'; base-uri 'none'"
)
DEFAULT_CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The cover's size, so a screenshot needs no scaling.
VIEWPORT = {"width": 1200, "height": 630}
_GAME_URL = "https://game.paletai.invalid/play"
# Keys most templates and generated games start or steer with, then a click in the middle.
_KEYS = ("Enter", "Space", "ArrowRight", "ArrowUp", "ArrowRight")
# How far a channel may vary in a region that is still one colour (JPEG noise).
BLANK_TOLERANCE = 12
# A failed launch is not tried again for this long: a missing browser must not cost every task.
LAUNCH_RETRY_SECONDS = 60.0

# The element the game is played in: the largest canvas, else an svg or a game/board element.
_FIND_ROOT = """() => {
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width >= 8 && r.height >= 8;
  };
  const area = (el) => { const r = el.getBoundingClientRect(); return r.width * r.height; };
  const words = /game|board|grid|arena|playfield|stage/i;
  let pool = [...document.querySelectorAll('canvas')].filter(visible);
  if (!pool.length) pool = [...document.querySelectorAll('svg')].filter(visible);
  if (!pool.length) pool = [...document.querySelectorAll('[id],[class]')]
    .filter((el) => words.test((el.id || '') + ' ' + (el.getAttribute('class') || '')))
    .filter(visible);
  if (!pool.length) return null;
  pool.sort((a, b) => area(b) - area(a));
  const r = pool[0].getBoundingClientRect();
  const tag = pool[0].tagName.toLowerCase();
  return {x: r.left, y: r.top, width: r.width, height: r.height, tag};
}"""


class BrowserUnavailable(Exception):
    """No browser to run the game in (missing, failed to start, crashed or hung)."""


@dataclass
class PlayReport:
    """What a game did in the browser after load and a moment of simulated input."""

    errors: list[str] = field(default_factory=list)
    blank: bool = False
    root: str = "page"  # what was checked for blankness: canvas, svg, div, ... or page
    screenshot: bytes = b""  # JPEG of the viewport (VIEWPORT), after the input


def find_chromium(configured: str | None) -> str | None:
    """The browser to use: the configured path when it is an executable, else /usr/bin/chromium."""
    candidate = configured or DEFAULT_CHROMIUM
    return candidate if os.path.isfile(candidate) and os.access(candidate, os.X_OK) else None


def is_blank(image_data: bytes, box: tuple[int, int, int, int] | None = None) -> bool:
    """True when the image (or `box` of it) is one colour, give or take JPEG's noise."""
    with Image.open(io.BytesIO(image_data)) as image:
        region = image.convert("RGB")
        if box is not None:
            region = region.crop(box)
        bands = cast("tuple[tuple[int, int], ...]", region.getextrema())
        return all(high - low <= BLANK_TOLERANCE for low, high in bands)


@dataclass
class _Slot:
    """A warm page, reused game after game: a fresh document each time, same renderer."""

    page: Page
    url: str
    context: BrowserContext
    errors: list[str] = field(default_factory=list)


class GameBrowser:
    """One headless Chromium, started lazily, shared by every task of the worker process."""

    def __init__(
        self,
        executable: str | None,
        *,
        timeout: float = 3.0,
        launch_timeout: float = 30.0,
        settle_seconds: float = 0.4,
        max_pages: int = 2,
    ) -> None:
        self.executable = executable
        self.timeout = timeout
        self.launch_timeout = launch_timeout
        self.settle_seconds = settle_seconds
        self.max_pages = max_pages  # a 2-core box renders two games at once at most
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        # One turn per page that may run at once; None: a page is to be made for that turn.
        self._slots: asyncio.Queue[_Slot | None] = asyncio.Queue()
        for _ in range(max_pages):
            self._slots.put_nowait(None)
        self._html: dict[str, str] = {}
        self._launch_lock = asyncio.Lock()
        self._failed_at: float | None = None
        self._serial = 0
        self.launches = 0

    @property
    def available(self) -> bool:
        return self.executable is not None

    async def start(self) -> None:
        """Start the browser now (launching is not part of any game's time budget)."""
        await self._ensure()

    async def _ensure(self) -> BrowserContext:
        async with self._launch_lock:
            if (
                self._browser is not None
                and self._browser.is_connected()
                and self._context is not None
            ):
                return self._context
            if self.executable is None:
                raise BrowserUnavailable("no Chromium found (set CHROMIUM_PATH)")
            if (
                self._failed_at is not None
                and time.monotonic() - self._failed_at < LAUNCH_RETRY_SECONDS
            ):
                raise BrowserUnavailable("Chromium failed to start a moment ago")
            await self._stop()
            from playwright.async_api import Error, async_playwright

            try:
                with anyio.fail_after(self.launch_timeout):
                    self._playwright = await async_playwright().start()
                    self._browser = await self._playwright.chromium.launch(
                        executable_path=self.executable, args=LAUNCH_ARGS, headless=True
                    )
                    self._context = await self._browser.new_context(
                        viewport=VIEWPORT,  # type: ignore[arg-type]
                        service_workers="block",
                    )
                    await self._context.route("**/*", self._serve)
                    # Warm pages for the free turns: a renderer starts once here, not inside
                    # a game's timeout. Turns held now come back stale and are replaced then.
                    free = 0
                    while not self._slots.empty():
                        self._slots.get_nowait()
                        free += 1
                    for _ in range(free):
                        self._slots.put_nowait(await self._new_slot(self._context))
            except (Error, TimeoutError, OSError) as exc:
                self._failed_at = time.monotonic()
                await self._stop()
                log.warning("Chromium at %s did not start: %s", self.executable, exc)
                raise BrowserUnavailable(f"Chromium did not start: {exc}") from exc
            self._failed_at = None
            self.launches += 1
            return self._context

    async def _new_slot(self, context: BrowserContext) -> _Slot:
        self._serial += 1
        slot = _Slot(
            page=await context.new_page(), url=f"{_GAME_URL}/{self._serial}", context=context
        )
        slot.page.on("pageerror", lambda error: slot.errors.append(_one_line(str(error))))
        # An empty page of the games' site, so the renderer the games will use starts now.
        self._html[slot.url] = "<!doctype html><title>ready</title>"
        try:
            await slot.page.goto(slot.url)
        finally:
            self._html.pop(slot.url, None)
        return slot

    async def _serve(self, route: Route) -> None:
        html = self._html.get(route.request.url)
        if html is None:
            await route.abort()  # the game may load nothing from anywhere
            return
        await route.fulfill(
            status=200,
            body=html,
            headers={
                "Content-Type": "text/html; charset=utf-8",
                "Content-Security-Policy": PLAY_CSP,
            },
        )

    async def play(self, html: str) -> PlayReport:
        """Load `html` as the play page does, press keys, click, and report what it did.

        Raises BrowserUnavailable when there is no working browser, or when the game did not
        answer within the timeout (the browser is then restarted on next use)."""
        context = await self._ensure()
        from playwright.async_api import Error

        slot = await self._slots.get()
        try:
            with anyio.fail_after(self.timeout):
                if slot is None or slot.context is not context or slot.page.is_closed():
                    slot = await self._new_slot(context)
                report = await self._play(slot, html)
        except TimeoutError as exc:
            # That page may be stuck in the game's loop: drop it, keep the browser.
            await self._drop(slot)
            raise BrowserUnavailable(f"the game did not answer within {self.timeout} s") from exc
        except Error as exc:
            await self._drop(slot)
            raise BrowserUnavailable(f"the browser failed: {exc}") from exc
        finally:
            self._html.pop(slot.url if slot else "", None)
            reusable = (
                slot is not None and slot.context is self._context and not slot.page.is_closed()
            )
            self._slots.put_nowait(slot if reusable else None)
        return report

    async def _play(self, slot: _Slot, html: str) -> PlayReport:
        page = slot.page
        self._html[slot.url] = html
        slot.errors.clear()
        await page.goto(slot.url, wait_until="load")
        await page.wait_for_timeout(self.settle_seconds * 500)
        for key in _KEYS:
            await page.keyboard.press(key)
        await page.mouse.click(VIEWPORT["width"] / 2, VIEWPORT["height"] / 2)
        await page.wait_for_timeout(self.settle_seconds * 1000)
        root: dict[str, Any] | None = await page.evaluate(_FIND_ROOT)
        # JPEG: Chromium encodes it several times faster than PNG; the cover is re-encoded anyway.
        shot = await page.screenshot(type="jpeg", quality=92)
        report = PlayReport(errors=list(slot.errors), screenshot=shot)
        box = None
        if root is not None:
            report.root = str(root["tag"])
            left, top = max(0, int(root["x"])), max(0, int(root["y"]))
            right = min(VIEWPORT["width"], int(root["x"] + root["width"]))
            bottom = min(VIEWPORT["height"], int(root["y"] + root["height"]))
            if right - left >= 8 and bottom - top >= 8:
                box = (left, top, right, bottom)
        report.blank = await anyio.to_thread.run_sync(is_blank, shot, box)
        return report

    async def _drop(self, slot: _Slot | None) -> None:
        """Close a page that failed; restart the whole browser when that fails too."""
        browser = self._browser
        if slot is not None and browser is not None and browser.is_connected():
            with anyio.move_on_after(1):
                try:
                    await slot.page.close()
                    return
                except Exception:  # noqa: BLE001 - then the browser itself is in trouble
                    log.debug("closing a failed page", exc_info=True)
        await self._restart_later()

    async def _restart_later(self) -> None:
        browser, self._browser, self._context = self._browser, None, None
        if browser is not None:
            with anyio.move_on_after(2):
                try:
                    await browser.close()
                except Exception:  # noqa: BLE001 - it may be dead already; the driver goes next
                    log.debug("closing a failed browser", exc_info=True)

    async def _stop(self) -> None:
        await self._restart_later()
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with anyio.move_on_after(5):
                try:
                    await playwright.stop()
                except Exception:  # noqa: BLE001 - the driver may be gone already
                    log.debug("stopping the Playwright driver", exc_info=True)

    async def aclose(self) -> None:
        async with self._launch_lock:
            await self._stop()


def _one_line(message: str, limit: int = 200) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def play_complaints(report: PlayReport) -> list[str]:
    """The playability problems in `report`, worded for the model's repair round."""
    complaints = [
        f"the game throws an uncaught error when it runs: {error}" for error in report.errors[:3]
    ]
    if report.blank:
        where = "page" if report.root == "page" else f"<{report.root}>"
        complaints.append(
            f"the game's {where} stays blank after load, key presses and a click: draw the "
            "first frame (board, player, score) as soon as the page loads"
        )
    return complaints
