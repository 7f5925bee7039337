"""Play every offline template in headless Chromium, served with the real play CSP.

Each game must load without errors, draw something, react to keys and to touch (checked through
its `window.__paletai` hook), reach game over and restart. The game loop is paused and stepped
with `__paletai.tick(n)` so that nothing depends on how fast the machine is.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from paletai.games.router import PLAY_HEADERS
from paletai.generation.providers.base import GenerationRequest
from paletai.generation.providers.offline import OfflineProvider, template_names
from tests.generation.cdp import Browser, Page, find_chromium

DESKTOP = {"width": 960, "height": 640, "deviceScaleFactor": 1, "mobile": False}
PHONE = {"width": 390, "height": 760, "deviceScaleFactor": 2, "mobile": True}
# The restart guard in the templates ignores a start within 350 ms of game over.
RESTART_GUARD = 0.45
SHOTS = os.environ.get("PALETAI_SCREENSHOTS")  # a folder to keep screenshots in, if set


class GameServer:
    """Serves rendered games on 127.0.0.1 with the headers the API's play route sends."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = body.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in PLAY_HEADERS.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, name: str, html: str) -> str:
        # A fresh path each time: the play headers let the browser cache a game.
        path = f"/{len(self.pages)}/{name}.html"
        self.pages[path] = html
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[GameServer]:
    game_server = GameServer()
    yield game_server
    game_server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.fail(
            "Chromium is not installed: the browser play-tests need it. "
            "Run `make tools` (or `apt-get install chromium`) and try again."
        )
    chromium = Browser(executable)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Page:
    page = browser.page or browser.open_page()
    page.send("Emulation.setDeviceMetricsOverride", DESKTOP)
    page.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    return page


def open_game(page: Page, server: GameServer, name: str, prompt: str | None = None) -> None:
    draft = OfflineProvider().build(
        GenerationRequest(prompt=prompt or f"a {name} game", seed=f"browser-{name}")
    )
    page.navigate(server.serve(name, draft.html))
    page.wait_for("typeof window.__paletai === 'object' && document.readyState === 'complete'")


def hook(page: Page, call: str) -> Any:
    return page.evaluate(f"window.__paletai.{call}")


def info(page: Page) -> dict[str, Any]:
    value = hook(page, "info()")
    assert isinstance(value, dict)
    return value


def tick(page: Page, frames: int) -> None:
    hook(page, f"tick({frames})")


def client_point(page: Page, x: float, y: float) -> tuple[float, float]:
    point = hook(page, f"toClient({x}, {y})")
    return point["x"], point["y"]


def canvas_colours(page: Page) -> int:
    """Distinct colours among sampled canvas pixels."""
    return int(
        page.evaluate(
            """(() => {
                const c = document.getElementById('game');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const seen = new Set();
                for (let i = 0; i < d.length; i += 4 * 37) {
                    seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
                }
                return seen.size;
            })()"""
        )
    )


def screenshot_colours(page: Page, name: str) -> int:
    png = page.screenshot()
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        (Path(SHOTS) / f"{name}.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    rect = page.evaluate(
        "(() => { const r = document.getElementById('game').getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom]; })()"
    )
    scale = image.width / page.evaluate("window.innerWidth")
    left, top, right, bottom = (int(v * scale) for v in rect)
    return len(image.crop((left, top, right, bottom)).getcolors(maxcolors=1 << 20) or [])


# Per game: keyboard reaction, then touch reaction, each checked through the hook.
def play_snake(page: Page) -> None:
    assert info(page)["dir"] == [1, 0]
    head_y = info(page)["head"][1]
    page.key("ArrowUp")
    assert info(page)["dir"] == [0, -1]
    tick(page, 30)
    assert info(page)["head"][1] < head_y
    x, y = client_point(page, 200, 200)
    page.swipe(x, y, x - 90, y)
    assert info(page)["dir"] == [-1, 0]
    assert isinstance(hook(page, "score()"), int | float)
    tick(page, 1200)  # heading left into the wall
    assert hook(page, "state()") == "over"


def play_pong(page: Page) -> None:
    start = info(page)["paddleY"]
    page.key("ArrowDown", up=False)
    tick(page, 12)
    page.key("ArrowDown", down=False)
    moved = info(page)["paddleY"]
    assert moved > start
    tick(page, 5)
    assert info(page)["paddleY"] == moved  # key released: the paddle stops
    x, y = client_point(page, 30, 10)
    page.touch_hold(x, y)
    tick(page, 40)
    page.touch_release()
    assert info(page)["paddleY"] < 5
    ball_x = info(page)["ballX"]
    tick(page, 80)
    assert info(page)["ballX"] != ball_x  # served and moving


def play_breakout(page: Page) -> None:
    start = info(page)["paddleX"]
    page.key("ArrowRight", up=False)
    tick(page, 10)
    page.key("ArrowRight", down=False)
    assert info(page)["paddleX"] > start
    assert info(page)["stuck"] is True
    page.key("Space")
    assert info(page)["stuck"] is False
    ball_y = info(page)["ballY"]
    tick(page, 5)
    assert info(page)["ballY"] < ball_y
    x, y = client_point(page, 5, 500)
    page.touch_hold(x, y)
    tick(page, 40)
    page.touch_release()
    assert info(page)["paddleX"] < 60
    tick(page, 120)
    assert info(page)["bricks"] < 54 or info(page)["ballY"] > 0  # the ball is in play


def play_flappy(page: Page) -> None:
    assert info(page)["vy"] < 0  # the start flaps
    tick(page, 40)
    assert info(page)["vy"] > 0
    page.key("Space")
    assert info(page)["vy"] < 0
    tick(page, 40)
    x, y = client_point(page, 180, 300)
    page.tap(x, y)
    assert info(page)["vy"] < 0
    tick(page, 600)  # no more flaps: the bird falls
    assert hook(page, "state()") == "over"


def play_shooter(page: Page) -> None:
    start = info(page)["shipX"]
    page.key("ArrowLeft", up=False)
    tick(page, 10)
    page.key("ArrowLeft", down=False)
    assert info(page)["shipX"] < start
    page.key("Space")
    assert info(page)["shots"] >= 1
    tick(page, 90)
    x, y = client_point(page, 470, 560)
    page.touch_hold(x, y)
    tick(page, 30)
    assert info(page)["shots"] >= 1  # firing while touching
    page.touch_release()
    assert info(page)["shipX"] > start
    aliens = info(page)["aliens"]
    tick(page, 400)
    assert info(page)["aliens"] <= aliens


def play_2048(page: Page) -> None:
    def board() -> list[int]:
        return list(info(page)["board"])

    start = board()
    assert sum(1 for v in start if v) == 2
    for key in ("ArrowLeft", "ArrowUp", "ArrowRight", "ArrowDown"):
        page.key(key)
    after_keys = board()
    assert after_keys != start
    assert sum(1 for v in after_keys if v) > 2 or hook(page, "score()") > 0
    cx, cy = client_point(page, 220, 220)
    moved = False
    for dx, dy in ((-120, 0), (0, -120), (120, 0), (0, 120)):
        before = board()
        page.swipe(cx, cy, cx + dx, cy + dy)
        if board() != before:
            moved = True
            break
    assert moved


def play_memory(page: Page) -> None:
    assert info(page)["faceUp"] == 0
    page.key("Space")
    assert info(page)["faceUp"] == 1
    page.key("ArrowRight")
    assert info(page)["cursor"] == 1
    x, y = client_point(page, *info(page)["centers"][5])
    page.tap(x, y)
    state = info(page)
    assert state["moves"] == 1
    assert state["faceUp"] + state["matched"] == 2
    tick(page, 120)
    assert info(page)["faceUp"] == 0  # a miss turns back; a match stays matched


def play_arena(page: Page) -> None:
    start = info(page)
    page.key("ArrowRight", up=False)
    tick(page, 10)
    page.key("ArrowRight", down=False)
    assert info(page)["x"] > start["x"]
    page.key("Space")
    assert info(page)["swing"] > 0  # the sword swings
    x, y = client_point(page, 40, 440)
    page.touch_hold(x, y)
    tick(page, 60)
    page.touch_release()
    moved = info(page)
    assert moved["x"] < start["x"]
    assert moved["y"] > start["y"]
    tick(page, 3000)  # standing still, the slimes win
    assert hook(page, "state()") == "over"


def play_platformer(page: Page) -> None:
    start = info(page)
    assert start["ground"] is True
    page.key("ArrowRight", up=False)
    tick(page, 20)
    page.key("ArrowRight", down=False)
    assert info(page)["x"] > start["x"] + 30
    page.key("Space")
    tick(page, 1)
    assert info(page)["vy"] < 0  # jumping
    tick(page, 60)
    assert info(page)["ground"] is True  # and landed
    here = info(page)["x"]
    x, y = client_point(page, 620, 200)  # hold right of the hero: run right, and jump
    page.touch_hold(x, y)
    tick(page, 2)
    assert info(page)["vy"] < 0
    tick(page, 30)
    page.touch_release()
    assert info(page)["x"] > here


PLAYS: dict[str, Callable[[Page], None]] = {
    "snake": play_snake,
    "pong": play_pong,
    "breakout": play_breakout,
    "flappy": play_flappy,
    "shooter": play_shooter,
    "2048": play_2048,
    "memory": play_memory,
    "arena": play_arena,
    "platformer": play_platformer,
}


def test_every_template_has_a_play_test() -> None:
    assert set(template_names()) == set(PLAYS)


def restart(page: Page, how: str) -> None:
    if hook(page, "state()") == "playing":
        assert hook(page, "forceOver()") == "over"
    time.sleep(RESTART_GUARD)
    if how == "tap":
        x, y = client_point(page, 10, 10)
        page.tap(x, y)
    else:
        page.key(how)
    assert hook(page, "state()") == "playing"
    assert hook(page, "score()") == 0


@pytest.mark.parametrize("name", sorted(PLAYS))
def test_game_plays_in_chromium(page: Page, server: GameServer, name: str) -> None:
    open_game(page, server, name)
    assert hook(page, "template") == name
    assert hook(page, "state()") == "ready"
    assert hook(page, "score()") == 0
    assert hook(page, "title()") == page.evaluate("document.title")
    assert canvas_colours(page) >= 3

    hook(page, "pause(true)")
    page.key("Space")
    assert hook(page, "state()") == "playing"
    PLAYS[name](page)
    assert screenshot_colours(page, name) >= 16

    restart(page, "tap")
    restart(page, "Space")
    restart(page, "Enter")
    assert page.errors() == []


# Per game: a simple player that must score, through the same inputs a person would use.
def score_snake(page: Page) -> None:
    keys = {(1, 0): "ArrowRight", (-1, 0): "ArrowLeft", (0, 1): "ArrowDown", (0, -1): "ArrowUp"}
    for _ in range(600):
        if hook(page, "score()") >= 20 or hook(page, "state()") != "playing":
            break
        state = info(page)
        (hx, hy), (fx, fy), (dx, dy) = state["head"], state["food"], state["dir"]
        want = (1 if fx > hx else -1, 0) if fx != hx else (0, 1 if fy > hy else -1)
        if want == (-dx, -dy):  # the food is behind: go round it
            want = (0, 1 if hy < 10 else -1) if dy == 0 else (1 if hx < 10 else -1, 0)
        page.key(keys[want])
        tick(page, 3)


def score_pong(page: Page) -> None:
    # Keys rather than the mouse: Chromium paces mouse moves to frames, keys go straight in.
    step = (
        "(() => { const p = window.__paletai; p.tick(2); const i = p.info();"
        " return {off: i.ballY - (i.paddleY + 42), done: p.score() > 0 || p.state() !== 'playing'};"
        " })()"
    )
    held: str | None = None
    for _ in range(3000):
        now = page.evaluate(step)
        if now["done"]:
            break
        want = "ArrowUp" if now["off"] < -10 else "ArrowDown" if now["off"] > 10 else None
        if want != held:
            if held:
                page.key(held, down=False)
            if want:
                page.key(want, up=False)
            held = want
    if held:
        page.key(held, down=False)


def score_breakout(page: Page) -> None:
    page.key("Space")
    for _ in range(1000):
        if hook(page, "score()") > 0 or hook(page, "state()") != "playing":
            break
        state = info(page)
        x, y = client_point(page, state["ballX"], 500)
        page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        if state["stuck"]:
            page.key("Space")
        tick(page, 2)


def score_flappy(page: Page) -> None:
    for _ in range(1500):
        if hook(page, "score()") > 0 or hook(page, "state()") != "playing":
            break
        state = info(page)
        target = (state["gap"][1] + state["gap"][2]) / 2 + 20 if state["gap"] else 300
        if state["birdY"] > target and state["vy"] > 1:
            page.key("Space")
        tick(page, 1)


def score_shooter(page: Page) -> None:
    page.key("Space", up=False)  # hold fire
    tick(page, 300)
    page.key("Space", down=False)


def score_2048(page: Page) -> None:
    for i in range(200):
        if hook(page, "score()") > 0 or hook(page, "state()") != "playing":
            break
        page.key(("ArrowLeft", "ArrowDown", "ArrowRight", "ArrowDown")[i % 4])


def score_memory(page: Page) -> None:
    centers = info(page)["centers"]
    for other in range(1, len(centers)):
        for card in (0, other):
            page.tap(*client_point(page, *centers[card]))
        if info(page)["matched"]:
            break
        tick(page, 120)  # the miss turns back


def score_arena(page: Page) -> None:
    for _ in range(400):  # strike as the slimes come into reach
        if hook(page, "score()") > 0 or hook(page, "state()") != "playing":
            break
        page.key("Space")
        tick(page, 6)


def score_platformer(page: Page) -> None:
    page.key("ArrowRight", up=False)  # the first coins lie on the way
    tick(page, 90)
    page.key("ArrowRight", down=False)


SCORERS: dict[str, Callable[[Page], None]] = {
    "snake": score_snake,
    "pong": score_pong,
    "breakout": score_breakout,
    "flappy": score_flappy,
    "shooter": score_shooter,
    "2048": score_2048,
    "memory": score_memory,
    "arena": score_arena,
    "platformer": score_platformer,
}


def test_every_template_has_a_scorer() -> None:
    assert set(SCORERS) == set(PLAYS)


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_game_can_score(page: Page, server: GameServer, name: str) -> None:
    open_game(page, server, name)
    hook(page, "pause(true)")
    page.key("Space")
    assert hook(page, "state()") == "playing"
    SCORERS[name](page)
    score = hook(page, "score()")
    assert score > 0
    assert page.evaluate("document.getElementById('score').textContent") == str(score)
    assert page.errors() == []


def test_hostile_prompt_stays_text_in_the_page(page: Page, server: GameServer) -> None:
    prompt = "snake </script><script>window.pwned=1</script><img src=x onerror=window.pwned=2> \"'"
    open_game(page, server, "snake", prompt=prompt)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("document.scripts.length") == 1
    assert page.evaluate("document.images.length") == 0
    assert prompt.split()[1] in page.evaluate("document.getElementById('ov-caption').textContent")
    assert page.evaluate("document.title") == hook(page, "title()")
    hook(page, "pause(true)")
    page.key("Space")
    assert hook(page, "state()") == "playing"
    assert page.errors() == []


@pytest.mark.parametrize("name", sorted(PLAYS))
def test_game_fits_a_phone(page: Page, server: GameServer, name: str) -> None:
    page.send("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        open_game(page, server, name, prompt=f"a pastel {name}")
        rect = page.evaluate(
            "(() => { const r = document.getElementById('game').getBoundingClientRect();"
            " return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,"
            " width: r.width, sw: document.documentElement.scrollWidth}; })()"
        )
        assert rect["left"] >= 0
        assert rect["top"] >= 0
        assert rect["right"] <= PHONE["width"]
        assert rect["bottom"] <= PHONE["height"]
        assert rect["width"] >= PHONE["width"] * 0.6  # uses the screen, not a postage stamp
        assert rect["sw"] <= PHONE["width"]  # no sideways scrolling
        x, y = client_point(page, 10, 10)
        page.tap(x, y)  # a tap on the start card starts the game
        assert hook(page, "state()") == "playing"
        assert screenshot_colours(page, f"{name}-phone") >= 16
        assert page.errors() == []
    finally:
        page.send("Emulation.setDeviceMetricsOverride", DESKTOP)


def test_two_player_pong_has_a_paddle_each(page: Page, server: GameServer) -> None:
    open_game(page, server, "pong", prompt="pong for two players")
    assert info(page)["players"] == 2
    hook(page, "pause(true)")
    page.key("Space")
    start = info(page)
    page.key("s", up=False)  # the left player's key moves the left paddle only
    tick(page, 12)
    page.key("s", down=False)
    after_s = info(page)
    assert after_s["paddleY"] > start["paddleY"]
    assert after_s["aiY"] == start["aiY"]
    page.key("ArrowUp", up=False)  # the right player's key moves the right paddle only
    tick(page, 12)
    page.key("ArrowUp", down=False)
    after_up = info(page)
    assert after_up["aiY"] < after_s["aiY"]
    assert after_up["paddleY"] == after_s["paddleY"]
    assert "Left player: W/S" in page.evaluate("document.getElementById('ov-text').textContent")
    assert page.errors() == []


@pytest.mark.parametrize(
    ("name", "prompt"),
    [("memory", "a memory game with fruits"), ("2048", "2048 but with cats")],
)
def test_themed_pieces_are_drawn(page: Page, server: GameServer, name: str, prompt: str) -> None:
    open_game(page, server, name, prompt=prompt)
    assert info(page)["themed"] is True
    hook(page, "pause(true)")
    page.key("Space")
    if name == "memory":
        page.key("Space")  # turn a card over
    tick(page, 20)
    assert screenshot_colours(page, f"{name}-themed") >= 16
    assert page.errors() == []
