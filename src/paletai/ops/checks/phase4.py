"""The checklist's verification phases as checks: a check report, what the checks look at, and
Phase 4 ("Configuration Verification") against a running PaletAI.

Every check records name, ok, seconds and a one-line detail; a report is what `--json` writes.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from rich.console import Console
from rich.markup import escape

from paletai.ops.checks import names
from paletai.ops.checks.api import ApiClient, ApiError, StageObserver, access_token, json_object
from paletai.ops.results import CHECK_MODELS, CheckResult

DEFAULT_PROMPT = "Create a simple snake game"

# The HTTP contract of DESIGN.md, as (method, path with parameters blanked).
CONTRACT_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("GET", "/health"),
    ("POST", "/auth/register"),
    ("POST", "/auth/login"),
    ("GET", "/auth/me"),
    ("POST", "/games"),
    ("GET", "/tasks/{}"),
    ("GET", "/games/feed"),
    ("GET", "/games/{}"),
    ("GET", "/games/{}/play"),
    ("POST", "/games/{}/like"),
    ("DELETE", "/games/{}/like"),
    ("DELETE", "/games/{}"),
    ("GET", "/users/me/games"),
    ("POST", "/notifications/subscribe"),
    ("DELETE", "/notifications/subscribe"),
)
GAME_FIELDS = (
    "id",
    "title",
    "description",
    "prompt",
    "author",
    "image_url",
    "play_url",
    "likes_count",
    "provider",
    "model",
    "created_at",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


# ---------------------------------------------------------------------------------------------
# Reports


@dataclass
class Check:
    """One verified fact: passed or not, how long it took, and what was seen."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class CheckReport:
    """The checks of one command, for the screen (`echo`) and the migration report (`--json`)."""

    command: str
    target: str
    checks: list[Check] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    echo: Callable[[Check], None] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        if self.echo is not None:
            self.echo(check)
        return check

    def result(self) -> CheckResult:
        """The command's declared `--json` result (results.py); `extra` must fit its model."""
        data = {
            "command": self.command,
            "target": self.target,
            "ok": self.ok,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "checks": [asdict(c) for c in self.checks],
            **self.extra,
        }
        return CHECK_MODELS[self.command].model_validate(data)


def print_check(console: Console, check: Check) -> None:
    """One line per check: PASS/FAIL, name, time, what was seen."""
    mark = "[bold green]PASS[/]" if check.ok else "[bold red]FAIL[/]"
    console.print(
        f"{mark} {escape(check.name):<34} {check.seconds:6.2f} s  {escape(check.detail)}",
        soft_wrap=True,
    )


def print_summary(console: Console, report: CheckReport) -> None:
    total, failed = len(report.checks), report.failed
    if report.ok:
        console.print(
            f"[bold green]PASSED[/] {report.command} {escape(report.target)}: all {total} checks "
            f"passed in {report.seconds:.1f} s"
        )
    else:
        names = ", ".join(c.name for c in failed) or "no check ran"
        console.print(
            f"[bold red]FAILED[/] {report.command} {escape(report.target)}: {len(failed)} of "
            f"{total} checks failed ({escape(names)}) in {report.seconds:.1f} s",
            soft_wrap=True,
        )


class CheckFailed(Exception):
    """A check saw something wrong; the message is the check's detail."""


class Aborted(Exception):
    """A check that later checks depend on failed: stop (cleanup still runs)."""


async def run_step(
    report: CheckReport, name: str, fn: Callable[[], Awaitable[str]], *, fatal: bool = False
) -> bool:
    """Run one check, timing it; a failure of a `fatal` step raises Aborted after recording.

    `fn()` gives the detail line; CheckFailed or ApiError (a call went wrong) fail the check."""
    started = time.perf_counter()
    try:
        detail, ok = await fn(), True
    except (CheckFailed, ApiError) as exc:
        detail, ok = str(exc), False
    report.add(Check(name, ok, round(time.perf_counter() - started, 3), detail))
    if not ok and fatal:
        raise Aborted(name)
    return ok


# ---------------------------------------------------------------------------------------------
# What the checks look at, as pure functions (tested on their own)


def health_problems(status_code: int, body: dict[str, Any]) -> list[str]:
    """What is wrong with a /health answer by the checklist's standard."""
    problems = [] if status_code == 200 else [f"status {status_code}, expected 200"]
    for key in ("status", "database", "api"):
        if body.get(key) != "healthy":
            problems.append(f'"{key}": {body.get(key)!r}, expected "healthy"')
    return problems


def missing_endpoints(openapi: dict[str, Any]) -> list[str]:
    """Contract endpoints that the OpenAPI document does not list ("METHOD /path")."""
    present: set[tuple[str, str]] = set()
    for path, operations in (openapi.get("paths") or {}).items():
        blanked = _blank_parameters(str(path))
        if isinstance(operations, dict):
            present.update((str(m).upper(), blanked) for m in operations)
    return [f"{m} {p}" for m, p in CONTRACT_ENDPOINTS if (m, p) not in present]


def _blank_parameters(path: str) -> str:
    out, depth = [], 0
    for char in path:
        if char == "{":
            depth += 1
            if depth == 1:
                out.append("{}")
        elif char == "}":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(char)
    return "".join(out)


def image_kind(content: bytes) -> str | None:
    if content.startswith(PNG_MAGIC):
        return "PNG"
    if content.startswith(JPEG_MAGIC):
        return "JPEG"
    return None


def describe_image(url: str, response: httpx.Response) -> str:
    """ "PNG 1234 bytes (image/png)" for an anonymous GET of a cover; CheckFailed otherwise."""
    if response.status_code != 200:
        raise CheckFailed(f"GET {url} (anonymous) answered {response.status_code}")
    kind = response.headers.get("content-type", "")
    magic = image_kind(response.content)
    if not kind.startswith("image/") or magic is None:
        raise CheckFailed(f"{url} is not a PNG/JPEG image (content-type {kind!r})")
    return f"{magic} {len(response.content)} bytes ({kind})"


def image_location(image_url: str, api_base: str) -> str:
    """Where a cover image lives: Azure Blob, an Azurite-style blob endpoint, or local /static."""
    parts = urlsplit(urljoin(api_base + "/", image_url))
    host = (parts.hostname or "").lower()
    if host.endswith(".blob.core.windows.net"):
        return f"Azure Blob Storage (account {host.split('.')[0]})"
    segments = parts.path.lstrip("/").split("/")
    if parts.path.startswith("/static/"):
        return f"local /static on {parts.netloc} (not blob storage)"
    # The emulator's path style: http://HOST:PORT/ACCOUNT/CONTAINER/BLOB, on this machine.
    local_host = host in ("localhost", "::1") or host.startswith("127.")
    if (
        parts.port == 10000
        or segments[0] == "devstoreaccount1"
        or (local_host and len(segments) >= 3)
    ):
        return f"Azurite-style blob endpoint ({parts.netloc}/{segments[0]})"
    return f"other host {parts.netloc}"


def is_blob_location(location: str) -> bool:
    return location.startswith(("Azure Blob", "Azurite"))


def csp_problems(csp: str | None) -> list[str]:
    """Why a play page's Content-Security-Policy does not sandbox the untrusted game."""
    if not csp:
        return ["no Content-Security-Policy header"]
    directives = [d.strip().split() for d in csp.split(";") if d.strip()]
    sandbox = [d for d in directives if d[0].lower() == "sandbox"]
    problems = []
    if not sandbox:
        problems.append("CSP has no sandbox directive")
    if "allow-same-origin" in csp.lower():
        problems.append("CSP allows allow-same-origin: the game would run with the API's origin")
    return problems


def missing_game_fields(game: dict[str, Any]) -> list[str]:
    missing = [name for name in GAME_FIELDS if game.get(name) in (None, "")]
    author = game.get("author")
    if isinstance(author, dict) and not (author.get("id") and author.get("username")):
        missing.append("author.id/username")
    return missing


def random_test_email() -> str:
    return f"migration-check+{uuid.uuid4().hex}@example.com"


# ---------------------------------------------------------------------------------------------
# Phase 4


@dataclass
class CheckOptions:
    base_url: str
    email: str | None = None
    password: str | None = None
    prompt: str = DEFAULT_PROMPT
    timeout: float = 120.0
    keep: bool = False
    require_blob: bool = False


@dataclass
class _State:
    email: str = ""
    password: str = ""
    token: str = ""
    task_id: str | None = None
    game_id: str | None = None
    game: dict[str, Any] = field(default_factory=dict)


async def register_or_login(api: ApiClient, state: _State, *, reuse: bool) -> str:
    """Register the test user; with `reuse`, an existing account (409) logs in instead."""
    response = await api.register(
        state.email, state.password, expect=(200, 409) if reuse else (200,)
    )
    if response.status_code == 409:
        state.token = await login_json(api, state.email, state.password)
        return f"{state.email} exists (409): logged in instead"
    body = json_object("POST", "/auth/register", response)
    if not body.get("access_token"):
        raise CheckFailed("POST /auth/register answered 200 without an access_token")
    state.token = access_token("POST /auth/register", body)
    return f"registered {state.email}"


async def login_json(api: ApiClient, email: str, password: str) -> str:
    body = await api.login(email, password)
    if not body.get("access_token") or str(body.get("token_type", "")).lower() != "bearer":
        raise CheckFailed(f"login answered no bearer token: keys {sorted(body)}")
    return str(body["access_token"])


async def run_phase4(
    options: CheckOptions,
    report: CheckReport,
    on_stage: StageObserver | None = None,
) -> CheckReport:
    """The checklist's Phase 4 against `options.base_url`, each step a check in `report`."""
    started = time.perf_counter()
    state = _State(
        email=options.email or random_test_email(),
        password=options.password or f"check-{uuid.uuid4().hex[:16]}",
    )
    report.extra.update(test_email=state.email, prompt=options.prompt)
    async with ApiClient(options.base_url) as api:
        try:
            await _phase4_steps(api, options, report, state, on_stage)
        except Aborted:
            pass
        finally:
            if state.game_id and not options.keep:
                await run_step(report, names.CLEANUP_GAME, lambda: _delete_game(api, state))
            elif state.game_id:
                report.extra["kept_game_id"] = state.game_id
    report.extra.update(task_id=state.task_id, game_id=state.game_id)
    report.seconds = time.perf_counter() - started
    return report


async def _phase4_steps(
    api: ApiClient,
    options: CheckOptions,
    report: CheckReport,
    state: _State,
    on_stage: StageObserver | None,
) -> None:
    async def health() -> str:
        status, body = await api.health()
        problems = health_problems(status, body)
        if problems:
            failing = body.get("failing")
            raise CheckFailed("; ".join(problems) + (f" (failing: {failing})" if failing else ""))
        report.extra["version"] = body.get("version")
        return (
            f"healthy; database healthy, storage {body.get('storage')}, ai {body.get('ai')}, "
            f"version {body.get('version')}"
        )

    async def docs() -> str:
        response = await api.call("GET", "/docs")
        kind = response.headers.get("content-type", "")
        if "html" not in kind or "swagger-ui" not in response.text.lower():
            raise CheckFailed(f"/docs is not the Swagger UI page ({kind})")
        return "Swagger UI page loads"

    async def openapi() -> str:
        body = await api.json("GET", "/openapi.json")
        missing = missing_endpoints(body)
        if missing:
            raise CheckFailed("missing: " + ", ".join(missing))
        return f"all {len(CONTRACT_ENDPOINTS)} contract endpoints listed"

    async def register() -> str:
        return await register_or_login(api, state, reuse=options.email is not None)

    async def login() -> str:
        state.token = await login_json(api, state.email, state.password)
        return "JSON {email, password}: bearer token"

    async def login_form() -> str:
        body = await api.login_form(state.email, state.password)
        if not body.get("access_token"):
            raise CheckFailed("OAuth2 form login answered no access_token")
        return "OAuth2 form (username, password): bearer token"

    async def me() -> str:
        body = await api.me(state.token)
        if str(body.get("email", "")).lower() != state.email.lower():
            raise CheckFailed(f"/auth/me is {body.get('email')!r}, expected {state.email}")
        return f"{body.get('email')}; prompts left today: {body.get('prompts_remaining_today')}"

    async def create() -> str:
        body = await api.create_game(options.prompt, state.token)
        state.task_id = str(body["task_id"])
        return f"task {state.task_id} {body.get('status')}"

    async def generation() -> str:
        assert state.task_id is not None
        stages: list[str] = []

        def seen(status: str, stage: str, seconds: float) -> None:
            stages.append(stage)
            if on_stage is not None:
                on_stage(status, stage, seconds)

        body = await api.wait_for_task(
            state.task_id, state.token, within=options.timeout, on_stage=seen
        )
        status = body.get("status")
        if status not in ("succeeded", "failed"):
            raise CheckFailed(
                f"task {state.task_id} still {status} (stage {body.get('stage')}) after "
                f"{options.timeout:g} s (--timeout)"
            )
        if status != "succeeded":
            path = " -> ".join(stages)
            raise CheckFailed(f"task {state.task_id} failed ({path}): {body.get('error')}")
        if not body.get("game_id"):
            raise CheckFailed(f"task {state.task_id} succeeded without a game_id")
        state.game_id = str(body["game_id"])
        return f"succeeded: game {state.game_id} after {body.get('attempts')} attempt(s)"

    async def game() -> str:
        assert state.game_id is not None
        state.game = await api.game(state.game_id)
        missing = missing_game_fields(state.game)
        if missing:
            raise CheckFailed("fields not populated: " + ", ".join(missing))
        return f"{state.game.get('title')!r} by {state.game['author'].get('username')}"

    async def image() -> str:
        url = state.game.get("image_url")
        if not url:
            raise CheckFailed("the game has no image_url")
        response = await api.get_absolute(str(url))
        described = describe_image(str(url), response)
        location = image_location(str(url), options.base_url)
        report.extra["image_location"] = location
        if options.require_blob and not is_blob_location(location):
            raise CheckFailed(f"image is on {location}; --require-blob wants blob storage")
        return f"{described} on {location}"

    async def play() -> str:
        assert state.game_id is not None
        path = f"/games/{state.game_id}/play"
        response = await api.play(state.game_id)
        if "text/html" not in response.headers.get("content-type", ""):
            raise CheckFailed(f"{path} is {response.headers.get('content-type')}, not HTML")
        csp = response.headers.get("content-security-policy")
        problems = csp_problems(csp)
        if problems:
            raise CheckFailed("; ".join(problems))
        detail = f"HTML {len(response.content)} bytes, CSP sandboxed without allow-same-origin"
        play_url = str(state.game.get("play_url", ""))
        if play_url and not play_url.startswith(options.base_url):
            detail += f" (note: play_url is {play_url})"
        return detail

    async def feed() -> str:
        cursor: str | None = None
        for page in range(1, 4):
            body = await api.feed(limit=20, cursor=cursor)
            items = body.get("items") or []
            for position, item in enumerate(items, start=1 + (page - 1) * 20):
                if isinstance(item, dict) and item.get("id") == state.game_id:
                    missing = missing_game_fields(item)
                    if missing:
                        raise CheckFailed(
                            "in the feed, fields not populated: " + ", ".join(missing)
                        )
                    return f"the game is #{position} in the feed, all fields populated"
            cursor = body.get("next_cursor")
            if not cursor:
                break
        raise CheckFailed(f"game {state.game_id} is not in the first pages of /games/feed")

    async def like() -> str:
        assert state.game_id is not None
        before = int(state.game.get("likes_count") or 0)
        first = await api.like(state.game_id, state.token)
        second = await api.like(state.game_id, state.token)
        if not (first.get("liked") and second.get("liked")):
            raise CheckFailed(f"like answered {first} then {second}")
        if first.get("likes_count") != before + 1 or second.get("likes_count") != before + 1:
            raise CheckFailed(f"likes_count {before} -> {first} -> {second}: not idempotent")
        third = await api.unlike(state.game_id, state.token)
        fourth = await api.unlike(state.game_id, state.token)
        if third.get("liked") or fourth.get("liked"):
            raise CheckFailed(f"unlike answered {third} then {fourth}")
        if third.get("likes_count") != before or fourth.get("likes_count") != before:
            raise CheckFailed(f"after unlike likes_count {third} -> {fourth}, expected {before}")
        return f"like x2 -> {before + 1}, unlike x2 -> {before} (idempotent)"

    async def notifications() -> str:
        player = f"migration-check-{uuid.uuid4().hex}"
        body = await api.subscribe(player, state.token)
        if body.get("subscribed") is not True:
            raise CheckFailed(f"subscribe answered {body}")
        body = await api.unsubscribe(player, state.token)
        if body.get("subscribed") is not False:
            raise CheckFailed(f"unsubscribe answered {body}")
        return "subscribed and unsubscribed a test player id"

    await run_step(report, names.HEALTH, health, fatal=True)
    await run_step(report, names.DOCS_SWAGGER, docs)
    await run_step(report, names.DOCS_OPENAPI, openapi)
    await run_step(report, names.AUTH_REGISTER, register, fatal=True)
    await run_step(report, names.AUTH_LOGIN_JSON, login, fatal=True)
    await run_step(report, names.AUTH_LOGIN_FORM, login_form)
    await run_step(report, names.AUTH_ME, me)
    await run_step(report, names.GAMES_CREATE, create, fatal=True)
    await run_step(report, names.GAMES_GENERATION, generation, fatal=True)
    await run_step(report, names.GAMES_THE_GAME, game, fatal=True)
    await run_step(report, names.IMAGE_COVER, image)
    await run_step(report, names.PLAY_SANDBOXED, play)
    await run_step(report, names.FEED_LISTED, feed)
    await run_step(report, names.LIKES, like)
    await run_step(report, names.NOTIFICATIONS, notifications)


async def _delete_game(api: ApiClient, state: _State) -> str:
    assert state.game_id is not None
    await api.delete_game(state.game_id, state.token)
    await api.call("GET", f"/games/{state.game_id}", expect=(404,))
    return f"deleted game {state.game_id} (the test user stays: {state.email})"
