"""The checklist's Phase 6 "Performance Testing": a few test games, then a bounded read load.

Bounded in count (games, requests) and in time (--timeout, --max-seconds), and it only ever talks
to the one URL it is given: point it at your own deployment, never at someone else's.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from paletai.ops.checks import names as check_names
from paletai.ops.checks.api import (
    ApiClient,
    ApiError,
    api_error_message,
)
from paletai.ops.checks.phase4 import (
    DEFAULT_PROMPT,
    Aborted,
    Check,
    CheckFailed,
    CheckReport,
    describe_image,
    random_test_email,
    run_step,
)

# The checklist's success criterion: "Response times < 2 seconds average".
AVERAGE_LIMIT_SECONDS = 2.0
PROMPTS = (
    DEFAULT_PROMPT,
    "Create a pong game with neon colours",
    "Create a breakout game",
    "Create a space shooter",
    "Create a memory card game",
)


@dataclass
class LoadOptions:
    base_url: str
    games: int = 5
    concurrency: int = 4
    requests: int = 200
    timeout: float = 120.0
    max_seconds: float = 120.0
    keep: bool = False


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; 0.0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class EndpointStats:
    """Latencies (seconds) and errors of one endpoint under load."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def record(self, seconds: float, error: str | None) -> None:
        self.latencies.append(seconds)
        if error is not None:
            self.errors += 1
            if len(self.error_samples) < 3:
                self.error_samples.append(error)

    def summary(self, wall_seconds: float) -> dict[str, Any]:
        n = len(self.latencies)
        return {
            "requests": n,
            "errors": self.errors,
            "requests_per_second": round(n / wall_seconds, 1) if wall_seconds else 0.0,
            "mean_ms": round(1000 * sum(self.latencies) / n, 1) if n else 0.0,
            "p50_ms": round(1000 * percentile(self.latencies, 50), 1),
            "p95_ms": round(1000 * percentile(self.latencies, 95), 1),
            "p99_ms": round(1000 * percentile(self.latencies, 99), 1),
            "max_ms": round(1000 * max(self.latencies, default=0.0), 1),
            "error_samples": self.error_samples,
        }


@dataclass
class _Game:
    task_id: str
    token: str
    prompt: str
    queued_at: float
    status: str = "queued"
    seconds: float = 0.0
    game_id: str | None = None
    error: str | None = None
    image: str | None = None


async def run_load(
    options: LoadOptions,
    report: CheckReport,
    on_progress: Callable[[str], None] | None = None,
    on_read: Callable[[], None] | None = None,
) -> CheckReport:
    """Phase 6 against `options.base_url`; checks go into `report`. `on_progress` gets a line
    per event worth showing, `on_read` is called after each read request of the load."""
    started = time.perf_counter()
    say = on_progress or (lambda _line: None)
    connections = max(options.concurrency, options.games) + 2
    async with ApiClient(options.base_url, max_connections=connections) as api:
        games: list[_Game] = []
        try:
            await run_step(report, check_names.HEALTH, lambda: _health(api), fatal=True)
            await run_step(
                report,
                f"{check_names.GAMES_CREATE} {options.games}",
                lambda: _create_games(api, options.games, games),
                fatal=True,
            )
            say(f"polling {len(games)} generation tasks (up to {options.timeout:g} s)")
            await run_step(
                report, check_names.GAMES_GENERATION, lambda: _poll_games(api, games, options, say)
            )
            await run_step(report, check_names.GAMES_IMAGES, lambda: _check_images(api, games))
            await _read_load(api, games, options, report, say, on_read or (lambda: None))
        except Aborted:
            pass
        finally:
            done = [g for g in games if g.game_id and g.status == "succeeded"]
            if done and not options.keep:
                await run_step(report, check_names.CLEANUP_GAMES, lambda: _delete(api, done))
        report.extra["games"] = [
            {
                "task_id": g.task_id,
                "game_id": g.game_id,
                "status": g.status,
                "seconds": round(g.seconds, 3),
                "error": g.error,
                "image": g.image,
            }
            for g in games
        ]
    report.seconds = time.perf_counter() - started
    return report


async def _health(api: ApiClient) -> str:
    body = await api.json("GET", "/health")
    if body.get("status") != "healthy":
        raise CheckFailed(f"/health says {body.get('status')!r}")
    return f"healthy, version {body.get('version')}"


async def _new_user(api: ApiClient) -> tuple[str, int]:
    """A fresh test account: its token and how many games it may still create today."""
    token = await api.register_token(random_test_email(), f"load-{uuid.uuid4().hex[:16]}")
    me = await api.me(token)
    return token, int(me.get("prompts_remaining_today") or 0)


async def _create_games(api: ApiClient, count: int, games: list[_Game]) -> str:
    # One account per DAILY_PROMPT_LIMIT games, so the limit never turns the test into 429s.
    token, left = await _new_user(api)
    users = 1
    for i in range(count):
        if left <= 0:
            token, left = await _new_user(api)
            users += 1
            if left <= 0:
                raise CheckFailed("a new account may create no game today (DAILY_PROMPT_LIMIT=0)")
        prompt = PROMPTS[i % len(PROMPTS)]
        body = await api.create_game(prompt, token)
        games.append(_Game(str(body["task_id"]), token, prompt, time.monotonic()))
        left -= 1
    return f"{count} tasks queued by {users} test account(s)"


async def _poll_games(
    api: ApiClient, games: list[_Game], options: LoadOptions, say: Callable[[str], None]
) -> str:
    deadline = time.monotonic() + options.timeout
    finished = itertools.count(1)

    async def poll(game: _Game) -> None:
        left = max(0.0, deadline - time.monotonic())
        body = await api.wait_for_task(game.task_id, game.token, within=left)
        game.status = str(body.get("status"))
        game.seconds = time.monotonic() - game.queued_at
        if game.status == "succeeded":
            game.game_id = str(body.get("game_id"))
        elif game.status == "failed":
            game.error = str(body.get("error"))
        else:
            game.error = f"still {game.status} (stage {body.get('stage')}) at the timeout"
        say(
            f"game {next(finished)}/{len(games)}: task {game.task_id} {game.status} "
            f"after {game.seconds:.1f} s"
        )

    await asyncio.gather(*(poll(g) for g in games))
    succeeded = [g for g in games if g.status == "succeeded"]
    slowest = max((g.seconds for g in succeeded), default=0.0)
    if len(succeeded) != len(games):
        failures = "; ".join(f"{g.task_id}: {g.error}" for g in games if g.status != "succeeded")
        raise CheckFailed(f"{len(succeeded)}/{len(games)} succeeded; {failures}")
    mean = sum(g.seconds for g in succeeded) / len(succeeded)
    return f"{len(games)}/{len(games)} succeeded, mean {mean:.1f} s, slowest {slowest:.1f} s"


async def _check_images(api: ApiClient, games: list[_Game]) -> str:
    problems = []
    for game in games:
        if game.game_id is None or game.status != "succeeded":
            continue
        body = await api.game(game.game_id)
        url = body.get("image_url")
        if not url:
            problems.append(f"{game.game_id}: no image_url")
            continue
        try:
            response = await api.get_absolute(str(url))
            game.image = describe_image(urljoin(api.base_url + "/", str(url)), response)
        except (CheckFailed, ApiError) as exc:
            problems.append(f"{game.game_id}: {exc}")
    with_images = sum(1 for g in games if g.image)
    if problems or with_images != len(games):
        raise CheckFailed(f"{with_images}/{len(games)} have images; " + "; ".join(problems))
    return f"all {len(games)} games have a PNG/JPEG cover"


async def _read_load(
    api: ApiClient,
    games: list[_Game],
    options: LoadOptions,
    report: CheckReport,
    say: Callable[[str], None],
    on_read: Callable[[], None],
) -> None:
    game_ids = [g.game_id for g in games if g.game_id and g.status == "succeeded"]
    names = ["feed", "game", "health"] if game_ids else ["feed", "health"]
    stats = {name: EndpointStats(name) for name in names}
    counter = itertools.count()
    deadline = time.monotonic() + options.max_seconds
    say(
        f"read load: {options.requests} requests over {', '.join(names)} "
        f"with concurrency {options.concurrency} (stops after {options.max_seconds:g} s)"
    )

    def path_of(i: int) -> tuple[str, str]:
        name = names[i % len(names)]
        if name == "feed":
            return name, "/games/feed?limit=20"
        if name == "game":
            return name, f"/games/{game_ids[(i // len(names)) % len(game_ids)]}"
        return name, "/health"

    async def worker() -> None:
        while True:
            i = next(counter)
            if i >= options.requests or time.monotonic() > deadline:
                return
            name, path = path_of(i)
            t0 = time.perf_counter()
            error: str | None = None
            try:
                # Any status: the load counts errors rather than stopping at the first.
                response = await api.call("GET", path, expect=None)
                if response.status_code != 200:
                    error = f"{response.status_code}: {api_error_message(response)}"
            except ApiError as exc:
                error = str(exc)
            stats[name].record(time.perf_counter() - t0, error)
            on_read()

    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(options.concurrency)))
    wall = time.perf_counter() - t_start

    summaries = {name: s.summary(wall) for name, s in stats.items()}
    done = sum(len(s.latencies) for s in stats.values())
    all_latencies = [x for s in stats.values() for x in s.latencies]
    mean = sum(all_latencies) / len(all_latencies) if all_latencies else 0.0
    report.extra["load"] = {
        "requests": done,
        "planned_requests": options.requests,
        "concurrency": options.concurrency,
        "seconds": round(wall, 3),
        "requests_per_second": round(done / wall, 1) if wall else 0.0,
        "mean_ms": round(1000 * mean, 1),
        "p50_ms": round(1000 * percentile(all_latencies, 50), 1),
        "p95_ms": round(1000 * percentile(all_latencies, 95), 1),
        "p99_ms": round(1000 * percentile(all_latencies, 99), 1),
        "endpoints": summaries,
    }
    for name, summary in summaries.items():
        line = (
            f"{summary['requests']} req, {summary['requests_per_second']} req/s, "
            f"p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
            f"p99 {summary['p99_ms']} ms, errors {summary['errors']}"
        )
        if summary["error_samples"]:
            line += " (" + "; ".join(summary["error_samples"]) + ")"
        report.add(Check(f"{check_names.LOAD_PREFIX}{name}", summary["errors"] == 0, 0.0, line))
    report.add(
        Check(
            check_names.LOAD_ALL_DONE,
            done == options.requests,
            round(wall, 3),
            f"{done}/{options.requests} in {wall:.1f} s ({done / wall if wall else 0:.1f} req/s)"
            + ("" if done == options.requests else "; stopped at --max-seconds"),
        )
    )
    report.add(
        Check(
            f"{check_names.LOAD_AVERAGE}{AVERAGE_LIMIT_SECONDS:g} s",
            bool(all_latencies) and mean < AVERAGE_LIMIT_SECONDS,
            0.0,
            f"average {1000 * mean:.0f} ms over {done} requests (the checklist's criterion)",
        )
    )


async def _delete(api: ApiClient, games: list[_Game]) -> str:
    for game in games:
        assert game.game_id is not None
        await api.delete_game(game.game_id, game.token)
    return f"deleted {len(games)} test games (the test accounts stay)"
