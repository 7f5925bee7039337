"""`paletai migrate rehearse`: the whole migration on this machine, under live traffic.

Two embedded MongoDBs ("old", "new"), one Azurite with two storage accounts ("old", "new"), the
old PaletAI as a real `paletai serve` process, seeded through its API, with a bounded loop of
live traffic on loopback (reads, likes, new games). Then, in order, with the library functions of
the commands an operator would run:

1. settings: write the old app's settings in `az webapp config appsettings list` form, derive the
   new app's (new database, new storage account), `settings diff` them.
2. `db sync` old -> new until caught up; `storage copy` old -> new (the bulk, while old serves).
3. `db cutover --service-url OLD --reverse`: maintenance on the old app, drain, verify; the pause
   is measured. The new app starts now, from the new settings file, open (the maintenance flag
   is deployment state, which the sync does not copy); its workers take up the queued tasks.
4. "DNS": the traffic loop switches to the new app; the old app is stopped (it is in maintenance,
   its workers idle); maintenance off on the new app (a no-op unless it was on): writes flow
   again, the reverse sync carries them to the old database (a rollback would lose nothing).
5. `storage copy --rewrite-urls` again: copies what the old app made during the sync, then points
   `games.image_url` at the new account in the NEW database. After the cutover, because before it
   the sync would carry the old URLs back over any rewrite; images work all along, since the old
   account keeps serving until the rewrite.
6. `migrate check` and a small `migrate load` against the new app; stop traffic; every write the
   traffic got a 2xx for must be on the new side (by id); `db verify` old vs new (after draining
   the reverse sync); then `migrate report` on the directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from paletai.core.processes import start_process, stop_process_group
from paletai.db.embedded import EmbeddedMongo, free_port
from paletai.ops.checks.api import ApiClient, ApiError
from paletai.ops.cli import now_iso, write_json
from paletai.ops.db.cutover import WriteSwitch
from paletai.ops.results import RehearseResult

DB_NAME = "paletai"
CONTAINER = "game-images"
OLD_ACCOUNT = "paletaiold"
# The new account is named like Azurite's development account: `migrate check --require-blob`
# (checks.image_location) recognises an Azurite URL by port 10000 or that account name only.
NEW_ACCOUNT = "devstoreaccount1"
READY_TIMEOUT = 90.0
HTTP_TIMEOUT = 30.0
MAX_IN_FLIGHT = 8

Say = Callable[[str], None]


class RehearsalError(Exception):
    """A step of the rehearsal failed; the message says which and why."""


class AzuriteMissing(RehearsalError):
    pass


def repo_root() -> Path:
    return Path(__file__).resolve().parents[4]


def find_azurite() -> Path | None:
    """The azurite-blob binary: $PALETAI_AZURITE_BIN, tools/ of this checkout, or PATH."""
    candidates = [os.environ.get("PALETAI_AZURITE_BIN", "")]
    candidates.append(str(repo_root() / "tools" / "node_modules" / ".bin" / "azurite-blob"))
    candidates.append(shutil.which("azurite-blob") or "")
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    mongo: EmbeddedMongo | None = None
    pid: int | None = None

    def __post_init__(self) -> None:
        if self.proc is not None:
            self.pid = self.proc.pid

    @property
    def running(self) -> bool:
        if self.mongo is not None:
            return self.mongo.process is not None and self.mongo.process.poll() is None
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        if self.mongo is not None:
            self.mongo.stop()
            return
        if self.proc is not None:
            stop_process_group(self.proc, timeout)


@dataclass
class Children:
    """Every process the rehearsal started, stopped in reverse order."""

    items: list[Child] = field(default_factory=list)

    def add(self, child: Child) -> Child:
        self.items.append(child)
        return child

    def pids(self) -> dict[str, int]:
        return {c.name: c.pid for c in self.items if c.pid is not None}

    def running(self) -> dict[str, int]:
        return {c.name: c.pid for c in self.items if c.pid is not None and c.running}

    def stop_all(self) -> None:
        for child in reversed(self.items):
            with contextlib.suppress(Exception):
                child.stop()


@dataclass
class Azurite:
    port: int
    keys: dict[str, str]

    def connection_string(self, account: str) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={self.keys[account]};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{account};"
        )


def start_azurite(binary: Path, workdir: Path, children: Children) -> Azurite:
    keys = {
        a: base64.b64encode(secrets.token_bytes(32)).decode() for a in (OLD_ACCOUNT, NEW_ACCOUNT)
    }
    port = free_port()
    env = dict(os.environ, AZURITE_ACCOUNTS=";".join(f"{a}:{k}" for a, k in keys.items()))
    proc = start_process(
        [
            str(binary),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
        ],
        log_path=workdir / "azurite.log",
        env=env,
        cwd=workdir,
    )
    children.add(Child("azurite", proc))
    _wait_port(port, proc, "Azurite", workdir / "azurite.log")
    return Azurite(port, keys)


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    import socket

    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RehearsalError(f"{what} exited with {proc.returncode}: {_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RehearsalError(f"{what} did not listen on 127.0.0.1:{port}: {_tail(log)}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-1500:]
    except OSError:
        return "(no log)"


def clean_env(values: dict[str, str]) -> dict[str, str]:
    """This process's environment minus any PaletAI/provider settings, plus `values`."""
    prefixes = ("DB_", "OPENAI_", "AZURE_", "ANTHROPIC_", "ONESIGNAL_", "APPLICATIONINSIGHTS_")
    names = ("AI_PROVIDER", "ADMIN_TOKEN", "JWT_SECRET_KEY", "IS_LOCAL_ENV", "PUBLIC_BASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in names}
    env.update(values)
    return env


@dataclass
class App:
    name: str
    url: str
    child: Child
    log: Path


def start_app(name: str, workdir: Path, settings: dict[str, str], children: Children) -> App:
    """`paletai serve` as a real process with these app settings (its own data dir)."""
    port = free_port()
    data_dir = workdir / f"{name}-app"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = clean_env(
        {
            **settings,
            "PALETAI_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "WARNING",
            "ENVIRONMENT": "test",
        }
    )
    log_path = workdir / f"{name}-app.log"
    proc = start_process(
        [sys.executable, "-m", "paletai", "serve", "--port", str(port)],
        log_path=log_path,
        env=env,
        cwd=data_dir,
    )
    child = children.add(Child(f"{name} app", proc))
    return App(name, f"http://127.0.0.1:{port}", child, log_path)


async def wait_healthy(app: App) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with ApiClient(app.url, timeout=2.0) as api:
        while time.monotonic() < deadline:
            proc = app.child.proc
            if proc is not None and proc.poll() is not None:
                raise RehearsalError(f"the {app.name} app exited early: {_tail(app.log)}")
            with contextlib.suppress(ApiError):
                if (await api.health())[0] == 200:
                    return
            await asyncio.sleep(0.2)
    raise RehearsalError(f"the {app.name} app did not become healthy: {_tail(app.log)}")


# ---------------------------------------------------------------------------------------------
# Seeding and live traffic


@dataclass
class User:
    email: str
    token: str


async def seed(base: str, users: int, games: int, say: Say) -> tuple[list[User], list[str]]:
    """Register users, create games (waiting for each), and like some: all through the API."""
    made: list[User] = []
    try:
        async with ApiClient(base, timeout=HTTP_TIMEOUT) as api:
            for i in range(users):
                email = f"player{i + 1}@rehearsal.example"
                token = await api.register_token(email, f"rehearsal-{i:04d}-pass")
                made.append(User(email, token))
            queued: list[tuple[str, str]] = []
            for i in range(games):
                user = made[i % len(made)]
                task = await api.create_game(
                    f"Create a simple snake game number {i + 1}", user.token
                )
                queued.append((str(task["task_id"]), user.token))
            finished = await api.wait_for_tasks(queued, within=READY_TIMEOUT)
            game_ids = [
                str(b["game_id"])
                for b in finished.values()
                if isinstance(b, dict) and b.get("status") == "succeeded"
            ]
            if len(game_ids) != games:
                raise RehearsalError(f"seeding: {len(game_ids)}/{games} games were generated")
            likes = 0
            for user in made:
                for game_id in random.sample(game_ids, k=min(3, len(game_ids))):
                    await api.like(game_id, user.token)
                    likes += 1
    except ApiError as exc:
        raise RehearsalError(f"seeding the old app: {exc}") from None
    say(f"seeded {users} users, {games} games, {likes} likes through the old app's API")
    return made, game_ids


@dataclass
class Request:
    kind: str  # read | like | game
    target: str  # old | new
    status: int  # 0: no answer
    seconds: float
    at: float
    retry_after: bool = False
    error: str = ""


@dataclass
class Traffic:
    """A bounded loop of live traffic on loopback: reads, likes and new games."""

    users: list[User]
    game_ids: list[str]
    rps: float
    base: str
    target: str = "old"
    requests: list[Request] = field(default_factory=list)
    acknowledged_games: list[tuple[User, str]] = field(default_factory=list)
    acknowledged_likes: list[tuple[User, str]] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=lambda: {"old": 0, "new": 0})
    # Monotonic times: maintenance asked on the old app (first time), writes opened on the new.
    paused_at: float | None = None
    opened_at: float | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    apis: dict[str, ApiClient] = field(default_factory=dict)  # by base URL

    def switch(self, base: str, target: str) -> None:
        self.base, self.target = base, target

    def _api(self, base: str) -> ApiClient:
        if base not in self.apis:
            self.apis[base] = ApiClient(base, timeout=HTTP_TIMEOUT)
        return self.apis[base]

    async def run(self) -> None:
        interval = 1.0 / max(self.rps, 0.1)
        limit = asyncio.Semaphore(MAX_IN_FLIGHT)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self.stopping.is_set():
                if not limit.locked():
                    await limit.acquire()
                    task = asyncio.create_task(self._one(limit))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), interval)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for api in self.apis.values():
                await api.http.aclose()

    async def drained(self, target: str) -> None:
        while self.in_flight[target]:  # noqa: ASYNC110 - a counter, polled briefly
            await asyncio.sleep(0.05)

    async def _one(self, limit: asyncio.Semaphore) -> None:
        base, target = self.base, self.target
        api = self._api(base)
        self.in_flight[target] += 1
        user = self.rng.choice(self.users)
        game_id = self.rng.choice(self.game_ids)
        roll = self.rng.random()
        kind = "read" if roll < 0.6 else "like" if roll < 0.85 else "game"
        started = time.monotonic()
        record = Request(kind, target, 0, 0.0, started)
        try:
            if kind == "read":
                if self.rng.random() < 0.5:
                    await api.feed(limit=10)
                else:
                    await api.game(game_id)
            elif kind == "like":
                await api.like(game_id, user.token)
                self.acknowledged_likes.append((user, game_id))
            else:
                task = await api.create_game("Create a pong game with neon colours", user.token)
                self.acknowledged_games.append((user, str(task["task_id"])))
            record.status = 200  # the client accepted the answer: a 2xx
        except ApiError as exc:
            record.status = exc.status_code
            record.retry_after = exc.response is not None and "retry-after" in exc.response.headers
            record.error = str(exc)[:160]
        finally:
            record.seconds = time.monotonic() - started
            self.requests.append(record)
            self.in_flight[target] -= 1
            limit.release()

    def summary(self) -> dict[str, Any]:
        writes = [r for r in self.requests if r.kind != "read"]
        refused = [r for r in writes if r.status == 503 and r.retry_after]
        unexpected = [
            r
            for r in self.requests
            if not (200 <= r.status < 300)
            and not (r.status == 503 and r.retry_after and r.kind != "read")
        ]
        reads = [r for r in self.requests if r.kind == "read"]
        window = (
            max(r.at + r.seconds for r in refused) - min(r.at for r in refused) if refused else 0.0
        )
        outside = [
            r
            for r in refused
            if self.paused_at is None
            or r.at + r.seconds < self.paused_at
            or (self.opened_at is not None and r.at > self.opened_at)
        ]
        pause = (
            self.opened_at - self.paused_at
            if self.paused_at is not None and self.opened_at is not None
            else None
        )
        return {
            "requests": len(self.requests),
            "reads": len(reads),
            "read_errors": sum(1 for r in reads if not 200 <= r.status < 300),
            "writes": len(writes),
            "by_target": {
                t: sum(1 for r in self.requests if r.target == t) for t in ("old", "new")
            },
            "acknowledged_games": len(self.acknowledged_games),
            "acknowledged_likes": len(self.acknowledged_likes),
            "maintenance_503": len(refused),
            "unexpected_errors": len(unexpected),
            "unexpected_samples": [
                f"{r.kind} on {r.target}: {r.status} {r.error}" for r in unexpected[:5]
            ],
            "refused_window_seconds": round(window, 3) if refused else None,
            "refused_outside_pause": len(outside),
            "pause_window_seconds": round(pause, 3) if pause is not None else None,
            "mean_ms": round(1000 * sum(r.seconds for r in self.requests) / len(self.requests), 1)
            if self.requests
            else 0.0,
        }


async def lost_writes(traffic: Traffic, base: str, within: float) -> dict[str, Any]:
    """Every game and like the traffic got a 2xx for must exist on `base` (by id)."""
    missing: list[str] = []
    async with ApiClient(base, timeout=HTTP_TIMEOUT) as api:
        tasks = [(task_id, user.token) for user, task_id in traffic.acknowledged_games]
        finished = await api.wait_for_tasks(tasks, within=within)
        for task_id, body in finished.items():
            if isinstance(body, ApiError):
                missing.append(f"task {task_id}: missing ({body.status_code})")
                continue
            if body.get("status") != "succeeded":
                missing.append(f"task {task_id}: {body.get('status')} (200)")
                continue
            try:
                await api.game(str(body["game_id"]))
            except ApiError as exc:
                missing.append(f"game {body['game_id']}: {exc.status_code}")
        unique = {(u.email, g): (u, g) for u, g in traffic.acknowledged_likes}
        for user, game_id in unique.values():
            try:
                liked = (await api.game(game_id, user.token)).get("liked_by_me") is True
            except ApiError:
                liked = False
            if not liked:
                missing.append(f"like of {game_id} by {user.email}: not found")
    return {"lost_writes": len(missing), "lost_samples": missing[:10]}


# ---------------------------------------------------------------------------------------------
# Options and the result


@dataclass
class RehearseOptions:
    workdir: Path
    users: int = 20
    games: int = 40
    traffic_rps: float = 10.0
    seconds: float = 20.0
    keep: bool = False


@dataclass
class Outcome:
    ok: bool
    report_path: Path | None
    summary: str
    result: RehearseResult
    failed_lines: list[str] = field(default_factory=list)


def az_settings(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v, "slotSetting": False} for k, v in sorted(values.items())]


def _exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, SystemExit):
        return int(exc.code or 0) if isinstance(exc.code, int) else 1
    return 1


# ---------------------------------------------------------------------------------------------
# The rehearsal


@dataclass
class Timeline:
    say: Say
    started: float = field(default_factory=time.monotonic)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @contextlib.contextmanager
    def step(self, name: str) -> Any:
        self.say(name + " ...")
        began = time.monotonic()
        entry: dict[str, Any] = {"step": name, "at_seconds": round(began - self.started, 2)}
        self.steps.append(entry)
        try:
            yield entry
        finally:
            entry["seconds"] = round(time.monotonic() - began, 2)


class RecordingSwitch:
    """The maintenance switch, noting when writes were first stopped (for the traffic figures)."""

    def __init__(self, inner: WriteSwitch, traffic: Traffic) -> None:
        self.inner = inner
        self.method = inner.method
        self.traffic = traffic

    async def check(self) -> None:
        await self.inner.check()

    async def stop(self) -> None:
        if self.traffic.paused_at is None:
            self.traffic.paused_at = time.monotonic()
        await self.inner.stop()

    async def resume(self) -> None:
        await self.inner.resume()


async def _set_maintenance(app: App, token: str, enabled: bool) -> None:
    try:
        async with ApiClient(app.url, timeout=HTTP_TIMEOUT) as api:
            now = await api.set_maintenance(enabled, token, reason="migration rehearsal")
    except ApiError as exc:
        raise RehearsalError(f"maintenance {enabled} on the {app.name} app: {exc}") from None
    if now is not enabled:
        raise RehearsalError(f"maintenance {enabled} on the {app.name} app: it is {now}")


def _settings_diff(old_file: Path, new_file: Path, json_out: Path) -> int:
    """`paletai settings diff OLD NEW --json FILE` (the command's own function)."""
    from paletai.ops.azure.settings_cli import diff

    try:
        diff(str(old_file), str(new_file), strict=False, json_out=json_out)
    except (typer.Exit, SystemExit) as exc:
        return _exit_code_of(exc)
    return 0


async def _migrate_check(base: str, json_out: Path) -> bool:
    from paletai.ops.checks.phase4 import CheckOptions, CheckReport, run_phase4

    report = CheckReport("migrate check", base)
    await run_phase4(CheckOptions(base_url=base, require_blob=True, timeout=READY_TIMEOUT), report)
    write_json(json_out, report.result())
    return report.ok


async def _migrate_load(base: str, json_out: Path) -> bool:
    from paletai.ops.checks.load import LoadOptions, run_load
    from paletai.ops.checks.phase4 import CheckReport

    report = CheckReport("migrate load", base)
    options = LoadOptions(
        base_url=base, games=5, concurrency=2, requests=60, timeout=READY_TIMEOUT, max_seconds=60
    )
    await run_load(options, report)
    write_json(json_out, report.result())
    return report.ok


async def rehearse(options: RehearseOptions, children: Children, say: Say) -> Outcome:
    """The whole migration (module docstring); every process goes into `children`."""
    from paletai.ops.db.cutover import CutoverFailed, MaintenanceSwitch
    from paletai.ops.db.cutover import cutover as run_cutover
    from paletai.ops.db.sync import SyncOptions, sync_until_synced, syncing
    from paletai.ops.db.verify import verify as run_verify
    from paletai.ops.report.checklist import write_report
    from paletai.ops.storage.copy import copy_storage

    azurite_bin = find_azurite()
    if azurite_bin is None:
        # Before anything is created: a rehearsal that cannot run leaves no folder behind.
        raise AzuriteMissing(
            "Azurite (the Azure Storage emulator) is not installed: run `make tools` "
            "(or scripts/install-tools.sh), or set PALETAI_AZURITE_BIN"
        )
    work = options.workdir
    work.mkdir(parents=True, exist_ok=True)
    timeline = Timeline(say)
    started_at = now_iso()
    admin_token = secrets.token_urlsafe(24)
    jwt_secret = secrets.token_urlsafe(48)
    data: dict[str, Any] = {"command": "migrate rehearse", "started_at": started_at}

    with timeline.step("starting two embedded MongoDBs and Azurite (two accounts)"):
        mongos = {}
        for side in ("old", "new"):
            mongo = EmbeddedMongo(work / f"{side}-db")
            child = children.add(Child(f"{side} database", mongo=mongo))
            mongos[side] = await asyncio.to_thread(mongo.start)
            child.pid = mongo.process.pid if mongo.process else None
        old_uri, new_uri = (
            f"{mongos[s].split('/?')[0]}/{DB_NAME}?directConnection=true" for s in ("old", "new")
        )
        azurite = await asyncio.to_thread(start_azurite, azurite_bin, work, children)

    common = {
        "AI_PROVIDER": "offline",
        "AZURE_STORAGE_CONTAINER": CONTAINER,
        "ADMIN_TOKEN": admin_token,
        "JWT_SECRET_KEY": jwt_secret,
        "DAILY_PROMPT_LIMIT": "1000",
        "TASK_LEASE_SECONDS": "5",
        "APP_NAME": "PaletAI",
    }
    old_settings = {
        **common,
        "DB_PATH": old_uri,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(OLD_ACCOUNT),
    }
    new_settings = {
        **common,
        "DB_PATH": new_uri,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string(NEW_ACCOUNT),
    }
    traffic: Traffic | None = None
    traffic_task: asyncio.Task[None] | None = None
    reverse_engine = None
    # The reverse sync runs from the cutover to the end (closed in `finally`).
    syncs = contextlib.AsyncExitStack()
    try:
        with timeline.step("starting the OLD PaletAI (paletai serve, old database, old account)"):
            old_app = start_app("old", work, old_settings, children)
            await wait_healthy(old_app)
        with timeline.step("seeding the old app through its API"):
            users, game_ids = await seed(old_app.url, options.users, options.games, say)

        with timeline.step(f"live traffic on the old app at {options.traffic_rps:g} req/s"):
            traffic = Traffic(users, game_ids, options.traffic_rps, old_app.url)
            traffic_task = asyncio.create_task(traffic.run())
        live_since = time.monotonic()

        with timeline.step("settings: export the old app's, derive the new app's, diff"):
            # Inputs, not results: kept out of the folder `migrate report` reads.
            inputs = work / "settings"
            inputs.mkdir(exist_ok=True)
            old_file, new_file = inputs / "old-app-settings.json", inputs / "new-app-settings.json"
            for path, values in ((old_file, old_settings), (new_file, new_settings)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    json.dump(az_settings(values), fh, indent=2)
            code = await asyncio.to_thread(
                _settings_diff, old_file, new_file, work / "settings-diff.json"
            )
            if code != 0:
                raise RehearsalError(f"settings diff exited {code}: see settings-diff.json")

        with timeline.step("db sync old -> new until caught up, under live traffic"):
            sync_result = await sync_until_synced(
                old_uri,
                new_uri,
                db_name=DB_NAME,
                options=SyncOptions(reconcile_interval=5.0),
                wait_seconds=READY_TIMEOUT,
            )
            write_json(work / "db-sync.json", sync_result)
        with timeline.step("storage copy old -> new (the bulk, while the old app serves)"):
            first_copy = await copy_storage(
                azurite.connection_string(OLD_ACCOUNT),
                azurite.connection_string(NEW_ACCOUNT),
                container=CONTAINER,
            )
            write_json(work / "storage-copy-bulk.json", first_copy.to_result())
        rest = options.seconds - (time.monotonic() - live_since)
        if rest > 0:
            with timeline.step(f"live traffic on the old app for {rest:.0f} s more"):
                await asyncio.sleep(rest)

        with timeline.step("db cutover --service-url OLD --reverse") as entry:
            switch = RecordingSwitch(MaintenanceSwitch(old_app.url, admin_token), traffic)
            attempts = 0
            while True:
                attempts += 1
                try:
                    cut, reverse_engine = await run_cutover(
                        old_uri,
                        new_uri,
                        switch,
                        db_name=DB_NAME,
                        reverse=True,
                        catch_up_timeout=READY_TIMEOUT,
                        drain_timeout=READY_TIMEOUT,
                        step=lambda m: say(f"  cutover: {m}"),
                    )
                    break
                except CutoverFailed as exc:
                    # A generation that was running when writes stopped finished during the
                    # verify; writes were resumed: try again (the operator would do the same).
                    write_json(work / f"db-cutover-attempt{attempts}.json", exc.report.to_result())
                    if attempts >= 3:
                        raise RehearsalError(f"db cutover failed {attempts} times: {exc}") from exc
                    say(f"  cutover attempt {attempts} not identical ({exc}); again in 2 s")
                    await asyncio.sleep(2)
            assert reverse_engine is not None
            await syncs.enter_async_context(syncing(reverse_engine))
            entry["attempts"] = attempts
            write_json(work / "db-cutover.json", cut.to_result())
            say(f"  write pause {cut.write_pause_seconds:.2f} s (attempt {attempts})")

        with timeline.step("starting the NEW PaletAI from new-app-settings.json"):
            values = {e["name"]: e["value"] for e in json.loads(new_file.read_text())}
            new_app = start_app("new", work, values, children)
            await wait_healthy(new_app)
        with timeline.step("'DNS' cutover: traffic -> new app; stop the old app; writes on"):
            traffic.switch(new_app.url, "new")
            await traffic.drained("old")
            await asyncio.to_thread(old_app.child.stop)
            await _set_maintenance(new_app, admin_token, False)
            traffic.opened_at = time.monotonic()

        with timeline.step("storage copy old -> new again, then --rewrite-urls in the NEW db"):
            final_copy = await copy_storage(
                azurite.connection_string(OLD_ACCOUNT),
                azurite.connection_string(NEW_ACCOUNT),
                container=CONTAINER,
                rewrite_db_uri=new_uri,
                db_name=DB_NAME,
            )
            write_json(work / "storage-copy.json", final_copy.to_result())

        with timeline.step("migrate check against the new app"):
            check_ok = await _migrate_check(new_app.url, work / "migrate-check.json")
        with timeline.step("migrate load (small) against the new app"):
            load_ok = await _migrate_load(new_app.url, work / "migrate-load.json")

        with timeline.step("stopping live traffic; looking for lost writes on the new side"):
            traffic.stopping.set()
            await traffic_task
            traffic_task = None
            lost = await lost_writes(traffic, new_app.url, READY_TIMEOUT)
            figures = {**traffic.summary(), **lost}
            say(
                f"  {figures['requests']} requests; {figures['acknowledged_games']} games and "
                f"{figures['acknowledged_likes']} likes acknowledged; "
                f"lost {figures['lost_writes']}; "
                f"{figures['maintenance_503']} writes refused with 503; "
                f"{figures['unexpected_errors']} unexpected errors"
            )

        with timeline.step("db verify old vs new (reverse sync drained)"):
            await reverse_engine.drain(READY_TIMEOUT, strict=True)
            verify_report = await run_verify(old_uri, new_uri, db_name=DB_NAME)
            if not verify_report.identical:
                await asyncio.sleep(2)
                await reverse_engine.drain(READY_TIMEOUT, strict=True)
                verify_report = await run_verify(old_uri, new_uri, db_name=DB_NAME)
            write_json(work / "db-verify.json", verify_report.to_result())
    finally:
        if traffic is not None:
            traffic.stopping.set()
        if traffic_task is not None:
            traffic_task.cancel()
            with contextlib.suppress(BaseException):
                await traffic_task
        with contextlib.suppress(Exception):
            await syncs.aclose()

    data.update(
        seconds=round(time.monotonic() - timeline.started, 2),
        ok=bool(
            check_ok
            and load_ok
            and figures["lost_writes"] == 0
            and figures["unexpected_errors"] == 0
            and verify_report.identical
        ),
        traffic=figures,
        steps=timeline.steps,
        write_pause_seconds=cut.write_pause_seconds,
        pids=children.pids(),
        urls={"old": old_app.url, "new": new_app.url},
        storage_first_copy=first_copy.to_result().copy_,
        order=(
            "sync + bulk image copy before the cutover; URL rewrite in the new database after "
            "it (before, the sync would carry the old URLs back over the rewrite)"
        ),
    )
    result = RehearseResult.model_validate(data)
    write_json(work / "rehearse.json", result)
    report, path = write_report(work, title="PaletAI migration rehearsal")
    return Outcome(result.ok and report.ok, path, report.summary, result, report.failed_lines)
