"""The web console as a player uses it: Playwright driving Chromium against `paletai serve`.

One server, one browser and one page for the module; the tests run in order, like a visit:
feed, register and log in, create, play, like, remix, my games, share page, phone width.
Screenshots of each page go to $PALETAI_SCREENSHOTS (or a tmp folder, printed).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from paletai.db.client import make_client
from paletai.generation.browser import DEFAULT_CHROMIUM, LAUNCH_ARGS
from tests.conftest import Player, create_game
from tests.process_helpers import ServerProcess, clean_env

pytestmark = pytest.mark.slow

DB_NAME = "console_browser"
PAGE = 20  # the console asks for 20 games at a time
SEEDED = 27  # more than one page of the feed
EMAIL, PASSWORD = "player@example.com", "a good password"
DAILY_LIMIT = 3  # create, remix, one more: then the quota test meets a 429
# A game that tries to read the console's token and cookies from inside its frame.
NOSY_GAME = """<!DOCTYPE html><html><body><canvas></canvas><script>
var out = {};
try { out.parent = String(parent.localStorage.getItem("paletai.token")); }
catch (e) { out.parent = "blocked: " + e.name; }
try { out.own = String(localStorage.getItem("paletai.token")); }
catch (e) { out.own = "blocked: " + e.name; }
try { out.cookie = String(document.cookie); } catch (e) { out.cookie = "blocked: " + e.name; }
try { out.parentCookie = String(parent.document.cookie); }
catch (e) { out.parentCookie = "blocked: " + e.name; }
document.body.setAttribute("data-result", JSON.stringify(out));
</script></body></html>"""


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, mongo_uri: str) -> AsyncIterator[str]:
    workdir = Path(tmp_path_factory.mktemp("console"))
    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME=DB_NAME,
        PALETAI_DATA_DIR=str(workdir / "data"),
        JWT_SECRET_KEY="console-secret-" + "c" * 40,
        DAILY_PROMPT_LIMIT=str(DAILY_LIMIT),
    )
    server = ServerProcess(workdir, env)
    try:
        server.wait_ready()
        yield server.base_url
    finally:
        server.terminate()
        client = make_client(mongo_uri)
        await client.drop_database(DB_NAME)
        await client.close()


@pytest.fixture(scope="module")
async def seeded(served: str, mongo_uri: str) -> dict[str, str]:
    client = make_client(mongo_uri)
    try:
        db = client[DB_NAME]
        seeder = Player("seeder-id", "seed@example.com", "seeder", "-", "-")
        for n in range(SEEDED):
            await create_game(
                db, seeder, title=f"Seeded game {n:02d}", description=f"seeded number {n}"
            )
        nosy = await create_game(db, seeder, title="Nosy game", html=NOSY_GAME)
        return {"nosy": nosy}
    finally:
        await client.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("PALETAI_SCREENSHOTS") or tmp_path_factory.mktemp("screens"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"console screenshots in {folder}")  # noqa: T201
    return folder


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(DEFAULT_CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make tools` (or `apt-get install chromium`)")
    chromium = playwright.chromium.launch(executable_path=DEFAULT_CHROMIUM, args=LAUNCH_ARGS)
    try:
        yield chromium
    finally:
        chromium.close()


class Visit:
    """The shared page, with every request and every console error it saw."""

    def __init__(self, page: Page, base: str, shots: Path) -> None:
        self.page, self.base, self.shots = page, base, shots
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.state: dict[str, Any] = {}
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: d.accept())

    def go(self, path: str) -> None:
        self.page.goto(f"{self.base}{path}")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def token(self) -> str:
        return str(self.page.evaluate("localStorage.getItem('paletai.token')"))


@pytest.fixture(scope="module")
def visit(served: str, seeded: dict[str, str], shots: Path, browser: Browser) -> Iterator[Visit]:
    # The database work first: sync Playwright keeps an event loop running in this thread.
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        yield Visit(context.new_page(), served, shots)
    finally:
        context.close()


def test_feed_shows_covers_and_loads_more(visit: Visit) -> None:
    page = visit.page
    visit.go("/")
    tiles = page.locator("#feed .tile")
    expect(tiles).to_have_count(PAGE)
    # Newest first: the nosy game was seeded last.
    expect(tiles.first.locator(".tile-title")).to_have_text("Nosy game")
    expect(tiles.nth(1)).to_contain_text("by seeder")
    expect(tiles.nth(1)).to_contain_text("♥ 0")
    visit.shot("feed")
    page.locator("#more").scroll_into_view_if_needed()  # the observer loads the next page
    expect(tiles).to_have_count(SEEDED + 1)
    expect(page.locator("#more")).to_be_hidden()  # no more pages
    titles = tiles.locator(".tile-title").all_text_contents()
    assert len(set(titles)) == SEEDED + 1


def test_more_button_works_from_the_keyboard(visit: Visit) -> None:
    page = visit.page
    visit.go("/#/?sort=popular")
    tiles = page.locator("#feed .tile")
    expect(tiles).to_have_count(PAGE)
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#more").focus()
    page.keyboard.press("Enter")
    expect(tiles).to_have_count(SEEDED + 1)


def test_register_log_out_and_log_in(visit: Visit) -> None:
    page = visit.page
    visit.go("/#/register")
    page.fill("#email", EMAIL)
    page.fill("#username", "player_one")
    page.fill("#password", "short")
    page.click("#auth-form button[type=submit]")
    assert page.evaluate("document.getElementById('password').validity.valid") is False
    page.fill("#password", PASSWORD)
    page.click("#auth-form button[type=submit]")
    expect(page.locator("#remaining")).to_have_text(
        f"{DAILY_LIMIT} of {DAILY_LIMIT} prompts left today"
    )
    expect(page.locator("#who")).to_have_text("player_one")
    assert visit.token().count(".") == 2  # a JWT, kept in localStorage

    page.click("#logout")
    expect(page.locator("a[data-nav=login]")).to_be_visible()
    assert page.evaluate("localStorage.getItem('paletai.token')") is None

    visit.go("/#/login")
    page.fill("#email", EMAIL)
    page.fill("#password", "not the password")
    page.click("#auth-form button[type=submit]")
    expect(page.locator("#auth-message [role=alert]")).to_contain_text("password")
    visit.shot("login")
    page.fill("#password", PASSWORD)
    page.click("#auth-form button[type=submit]")
    expect(page.locator("#remaining")).to_be_visible()
    expect(page.locator("a[data-nav=mine]")).to_be_visible()


def test_create_shows_the_stages_then_the_game(visit: Visit) -> None:
    page = visit.page
    visit.go("/#/create")
    page.fill("#prompt", "a snake game in neon colours")
    page.click("form.prompt button[type=submit]")
    stages = page.locator("#stages li")
    expect(stages).to_have_count(5)
    expect(page.locator("#ready")).to_be_visible(timeout=30_000)
    assert stages.all_text_contents() == [
        "Queued",
        "Writing the game",
        "Checking it runs",
        "Drawing the cover",
        "Publishing",
    ]
    assert [stages.nth(i).get_attribute("class") for i in range(5)] == ["done"] * 5
    expect(page.locator("#remaining")).to_have_text(
        f"{DAILY_LIMIT - 1} of {DAILY_LIMIT} prompts left today"
    )
    frame = page.locator("#ready iframe")
    src = frame.get_attribute("src") or ""
    assert src.startswith("/games/")
    assert src.endswith("/play")
    visit.state["game_id"] = src.split("/")[2]
    expect(page.frame_locator("#ready iframe").locator("canvas")).to_be_visible()
    visit.shot("create-stages")


def test_a_failed_task_shows_its_error(visit: Visit) -> None:
    # The API answers as it does when generation fails; routed so no prompt is spent on it.
    page = visit.page
    accepted = {"task_id": "t-failed", "status": "queued", "status_url": "/tasks/t-failed"}
    failed = {
        "task_id": "t-failed",
        "status": "failed",
        "stage": "validating",
        "progress": {},
        "attempts": 3,
        "game_id": None,
        "error": "the game did not pass validation: it loads a script from the network",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }

    def answer(route: Route) -> None:
        body = accepted if route.request.method == "POST" else failed
        route.fulfill(status=202 if body is accepted else 200, json=body)

    page.route("**/games", answer)
    page.route("**/tasks/t-failed", answer)
    try:
        visit.go("/#/create")
        page.fill("#prompt", "a game that fails")
        page.click("form.prompt button[type=submit]")
        alert = page.locator("#progress [role=alert]")
        expect(alert).to_contain_text("it loads a script from the network")
        classes = [li.get_attribute("class") for li in page.locator("#stages li").all()]
        assert classes == ["done", "done", "failed", "", ""]
    finally:
        page.unroute("**/games")
        page.unroute("**/tasks/t-failed")


def test_play_in_a_sandbox_the_keys_reach_the_game(visit: Visit) -> None:
    page = visit.page
    game_id = visit.state["game_id"]
    visit.go(f"/#/play/{game_id}")
    frame_el = page.locator("#game-frame")
    assert frame_el.get_attribute("sandbox") == "allow-scripts"
    expect(page.locator(".info h1")).to_have_text("Snake Neon Colours")
    expect(page.locator("#description")).to_contain_text("Snake")
    expect(page.locator(".controls")).to_contain_text("Arrow keys")
    game = page.frame_locator("#game-frame")
    canvas = game.locator("canvas")
    expect(canvas).to_be_visible()
    game.locator("#ov-button").click()  # Play: the game starts and has the focus
    frame = next(f for f in page.frames if f.url.endswith(f"/games/{game_id}/play"))
    frame.wait_for_function("window.__paletai.state() === 'playing'")
    frame.evaluate("window.__paletai.pause(true)")  # hold still while we look
    before = canvas.screenshot()
    assert frame.evaluate("window.__paletai.info().dir") == [1, 0]
    page.keyboard.press("ArrowUp")
    assert frame.evaluate("window.__paletai.info().dir") == [0, -1]
    frame.evaluate("window.__paletai.tick(20)")
    assert canvas.screenshot() != before
    visit.shot("play")


def test_like_then_unlike(visit: Visit) -> None:
    page = visit.page
    likes = page.locator("#likes")
    expect(likes).to_have_text("0")
    page.click("#like")
    expect(likes).to_have_text("1")
    expect(page.locator("#like")).to_have_attribute("aria-pressed", "true")
    page.reload()
    expect(page.locator("#likes")).to_have_text("1")  # kept by the API, not just on the page
    page.click("#like")
    expect(page.locator("#likes")).to_have_text("0")
    page.click("#like")
    expect(page.locator("#likes")).to_have_text("1")


def test_remix_names_its_parent(visit: Visit) -> None:
    page = visit.page
    parent_id = visit.state["game_id"]
    page.fill("#remix-prompt", "make it faster")
    page.click(".remix button[type=submit]")
    expect(page.locator("#remix-progress #ready")).to_be_visible(timeout=30_000)
    page.click("#remix-progress #ready a.button")
    expect(page.locator("#parent")).to_contain_text("Remix of Snake Neon Colours")
    remix_id = page.url.rsplit("/", 1)[1]
    assert remix_id != parent_id
    visit.state["remix_id"] = remix_id
    parent_link = page.locator("#parent a")
    assert parent_link.get_attribute("href") == f"#/play/{parent_id}"


def test_my_games_delete(visit: Visit) -> None:
    page = visit.page
    visit.go("/#/mine")
    rows = page.locator("#my-games li")
    expect(rows).to_have_count(2)
    visit.shot("my-games")
    remix_id = visit.state["remix_id"]
    page.locator(f"#my-games li[data-game='{remix_id}'] button").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#mine-status")).to_contain_text("Deleted")
    assert httpx.get(f"{visit.base}/games/{remix_id}").status_code == 404


def test_past_the_daily_limit_says_when_prompts_come_back(visit: Visit) -> None:
    page = visit.page
    visit.go("/#/create")
    expect(page.locator("#remaining")).to_have_text(f"1 of {DAILY_LIMIT} prompts left today")
    page.fill("#prompt", "a breakout game")
    page.click("form.prompt button[type=submit]")
    expect(page.locator("#ready")).to_be_visible(timeout=30_000)
    expect(page.locator("#remaining")).to_have_text(f"0 of {DAILY_LIMIT} prompts left today")
    page.click("form.prompt button[type=submit]")
    alert = page.locator("form.prompt [role=alert]")
    expect(alert).to_contain_text("Your prompts come back in ")
    expect(alert).to_contain_text(" (at ")


def test_share_page_has_card_tags(visit: Visit) -> None:
    page = visit.page
    game_id = visit.state["game_id"]
    visit.go(f"/g/{game_id}")

    def meta(attr: str, name: str) -> str | None:
        return page.locator(f"meta[{attr}='{name}']").get_attribute("content")

    assert meta("property", "og:title") == "Snake Neon Colours"
    assert "Snake" in (meta("property", "og:description") or "")
    assert meta("name", "twitter:card") == "summary_large_image"
    image = meta("property", "og:image") or ""
    assert image.startswith(visit.base + "/")  # absolute, for the sites that read the card
    cover = httpx.get(image)
    assert cover.status_code == 200
    assert cover.headers["content-type"] == "image/png"
    expect(page.locator("h1")).to_have_text("Snake Neon Colours")
    expect(page.locator(".share-cover")).to_be_visible()
    assert page.locator(".share-cover").evaluate("img => img.naturalWidth") > 0
    visit.shot("share")
    page.get_by_role("link", name="▶ Play").click()
    expect(page.locator("#game-frame")).to_be_visible()

    missing = page.goto(f"{visit.base}/g/no-such-game")
    assert missing is not None
    assert missing.status == 404
    expect(page.locator("h1")).to_have_text("Game not found")


def test_a_game_cannot_read_the_consoles_storage(visit: Visit, seeded: dict[str, str]) -> None:
    page = visit.page
    visit.go("/")
    page.evaluate("document.cookie = 'probe=console-cookie; path=/'")
    token = visit.token()
    assert token.count(".") == 2
    visit.go(f"/#/play/{seeded['nosy']}")
    body = page.frame_locator("#game-frame").locator("body[data-result]")
    expect(body).to_have_count(1)
    result = json.loads(body.get_attribute("data-result") or "{}")
    assert result["parent"].startswith("blocked: ")
    assert result["parentCookie"].startswith("blocked: ")
    assert token not in json.dumps(result)
    assert "console-cookie" not in json.dumps(result)
    assert page.evaluate("document.cookie").count("console-cookie") == 1  # it was there to read


def test_feed_at_phone_width(visit: Visit) -> None:
    page = visit.page
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        visit.go("/")
        expect(page.locator("#feed .tile")).to_have_count(PAGE)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        first = page.locator("#feed .tile").first.bounding_box()
        assert first is not None
        assert first["width"] >= 150
        visit.shot("feed-phone")
        visit.go(f"/#/play/{visit.state['game_id']}")
        expect(page.locator("#game-frame")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        frame = page.locator("#game-frame").bounding_box()
        assert frame is not None
        assert frame["width"] >= 350  # the game gets the phone's width
        visit.shot("play-phone")
    finally:
        page.set_viewport_size({"width": 1280, "height": 720})


def test_the_console_talks_to_its_own_origin_only(visit: Visit) -> None:
    own = urlsplit(visit.base).netloc
    assert len(visit.requests) > 20
    foreign = [
        url
        for url in visit.requests
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != own
    ]
    assert foreign == []
    # CSP violations and script errors would show here; the 4xx the visit caused on purpose
    # (a wrong password, an unknown share page) are expected.
    expected = "Failed to load resource: the server responded with a status of 4"
    assert [e for e in visit.errors if not e.startswith(expected)] == []
