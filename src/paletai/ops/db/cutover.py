"""`paletai db cutover`: stop writes on the old side, drain the sync, verify, and (optionally)
start syncing back, so that a rollback loses nothing written after the switch.

The write pause is measured from the moment we ask the old side to stop writes to the moment the
target is verified identical and ready (reverse stream positioned when --reverse is given).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx

from paletai.db.client import describe_hosts
from paletai.ops.db.common import SYNC_STATE_COLLECTION, user_collections
from paletai.ops.db.sync import SyncEngine, SyncOptions, open_engine, plain_token, syncing
from paletai.ops.db.verify import VerifyReport, verify_databases
from paletai.ops.errors import OpsError
from paletai.ops.results import DbCutoverResult

Step = Callable[[str], None]


class WriteSwitch(Protocol):
    """How writes are stopped on the old side (and resumed if the cutover is abandoned)."""

    method: str

    async def check(self) -> None: ...
    async def stop(self) -> None: ...
    async def resume(self) -> None: ...


class MaintenanceSwitch:
    """The old PaletAI's own switch: `POST /admin/maintenance` with the ADMIN_TOKEN bearer."""

    method = "maintenance"

    def __init__(self, service_url: str, admin_token: str, *, timeout: float = 10.0) -> None:
        if not admin_token:
            raise OpsError("--admin-token (or ADMIN_TOKEN) is required with --service-url")
        self.url = service_url.rstrip("/") + "/admin/maintenance"
        self.headers = {"Authorization": f"Bearer {admin_token}"}
        self.timeout = timeout

    async def _call(self, method: str, body: dict[str, Any] | None = None) -> bool:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(method, self.url, json=body, headers=self.headers)
        except httpx.HTTPError as exc:
            raise OpsError(f"cannot reach the service at {self.url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise OpsError(
                f"the service refused the admin token ({response.status_code}) at {self.url}"
            )
        if response.status_code != 200:
            raise OpsError(
                f"{method} {self.url} answered {response.status_code}: {response.text[:200]}"
            )
        try:
            return bool(response.json()["maintenance"])
        except (ValueError, KeyError, TypeError) as exc:
            raise OpsError(f"{self.url} answered without a 'maintenance' field") from exc

    async def check(self) -> None:
        await self._call("GET")

    async def stop(self) -> None:
        if not await self._call("POST", {"enabled": True}):
            raise OpsError(f"{self.url} did not switch maintenance on")

    async def resume(self) -> None:
        await self._call("POST", {"enabled": False})


class CommandSwitch:
    """Operator-given shell commands (e.g. `az webapp stop ...`), for an old side not ours."""

    method = "command"

    def __init__(self, stop_command: str, start_command: str | None = None) -> None:
        self.stop_command = stop_command
        self.start_command = start_command

    @staticmethod
    async def _run(command: str) -> None:
        process = await asyncio.create_subprocess_shell(
            command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            tail = output.decode(errors="replace").strip()[-400:]
            raise OpsError(f"command failed with exit code {process.returncode}: {command}\n{tail}")

    async def check(self) -> None:
        return None

    async def stop(self) -> None:
        await self._run(self.stop_command)

    async def resume(self) -> None:
        if self.start_command:
            await self._run(self.start_command)


@dataclass
class CutoverReport:
    source: str
    target: str
    method: str
    started_at: str = ""
    writes_stopped_at: str = ""
    ready_at: str = ""
    write_pause_seconds: float = 0.0
    stop_call_seconds: float = 0.0
    drain_seconds: float = 0.0
    verify_seconds: float = 0.0
    initial_sync_seconds: float = 0.0
    identical: bool = False
    reverse: bool = False
    collections: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_result(self) -> DbCutoverResult:
        return DbCutoverResult.model_validate(self.as_dict())


class CutoverFailed(OpsError):
    def __init__(self, message: str, report: CutoverReport, verify: VerifyReport | None) -> None:
        super().__init__(message)
        self.report = report
        self.verify = verify


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


async def seed_reverse(engine: SyncEngine, new_side: str) -> None:
    """Position a reverse sync (new -> old) at "now" on every collection, skipping its copy:
    cutover only calls this once both sides are verified identical and writes are stopped.

    `engine` is the forward sync (old -> new); the checkpoints go where the reverse sync will
    read them, in the old database, under `new_side` (the id `open_engine` gives the new side).
    """
    for name in await user_collections(engine.target_db):
        coll = engine.target_db[name]
        stream = await coll.watch(full_document="updateLookup")
        try:
            token = stream.resume_token
        finally:
            await stream.close()
        if token is None:
            raise OpsError(f"the new side gave no change-stream resume token for {name!r}")
        await engine.source_db[SYNC_STATE_COLLECTION].update_one(
            {"_id": name},
            {
                "$set": {
                    "phase": "stream",
                    "mode": "reverse",
                    "token": plain_token(token),
                    "source": new_side,
                    "updated_at": dt.datetime.now(dt.UTC),
                }
            },
            upsert=True,
        )


async def cutover(
    source_uri: str,
    target_uri: str,
    switch: WriteSwitch,
    *,
    db_name: str | None = None,
    target_db_name: str | None = None,
    reverse: bool = False,
    catch_up_timeout: float = 600.0,
    drain_timeout: float = 120.0,
    options: SyncOptions | None = None,
    step: Step | None = None,
) -> tuple[CutoverReport, SyncEngine | None]:
    """Run the guided switch. Returns the report and, with `reverse`, the reverse sync (new ->
    old), positioned at the switch but not started: run it with `async with syncing(engine)`
    for as long as the rollback window lasts."""
    say: Step = step or (lambda _msg: None)
    await switch.check()
    verify_report: VerifyReport | None = None
    async with syncing(
        source_uri,
        target_uri,
        db_name=db_name,
        target_db_name=target_db_name,
        options=options or SyncOptions(reconcile_interval=10.0),
    ) as engine:
        report = CutoverReport(
            source=f"{describe_hosts(source_uri)}/{engine.source_db.name}",
            target=f"{describe_hosts(target_uri)}/{engine.target_db.name}",
            method=switch.method,
            started_at=_now(),
            reverse=reverse,
        )
        say("syncing while the old side still takes writes ...")
        began = time.monotonic()
        await engine.drain(catch_up_timeout)
        report.initial_sync_seconds = round(time.monotonic() - began, 3)

        # Periodic reconciles would compete with the verify for the servers during the pause.
        engine.options.reconcile_interval = float("inf")

        say(f"stopping writes on the old side ({switch.method}) ...")
        paused = time.monotonic()
        report.writes_stopped_at = _now()
        await switch.stop()
        report.stop_call_seconds = round(time.monotonic() - paused, 3)
        try:
            say("draining the sync to zero lag ...")
            mark = time.monotonic()
            await engine.drain(drain_timeout, reconcile=False)
            report.drain_seconds = round(time.monotonic() - mark, 3)
            say("verifying ...")
            mark = time.monotonic()
            verify_report = await verify_databases(engine.source_db, engine.target_db)
            if not verify_report.identical and _only_id_sets_differ(verify_report):
                # A source that sends no delete events (Cosmos DB RU): reconcile, verify again.
                say("reconciling _id sets (the source sent no event for some changes) ...")
                await engine.drain(drain_timeout, strict=True)
                verify_report = await verify_databases(engine.source_db, engine.target_db)
            report.verify_seconds = round(time.monotonic() - mark, 3)
            report.identical = verify_report.identical
            report.collections = [
                {"name": c.name, "source": c.source_count, "target": c.target_count}
                for c in verify_report.collections
            ]
            if not verify_report.identical:
                raise CutoverFailed(
                    "the target is not identical after draining", report, verify_report
                )
            if reverse:
                await seed_reverse(engine, report.target)
        except BaseException:
            say("cutover abandoned: resuming writes on the old side")
            await switch.resume()
            raise
        report.write_pause_seconds = round(time.monotonic() - paused, 3)
        report.ready_at = _now()
        await engine.target_db[SYNC_STATE_COLLECTION].update_one(
            {"_id": f"cutover:{report.ready_at}"}, {"$set": report.as_dict()}, upsert=True
        )
        source_db, target_db = engine.source_db.name, engine.target_db.name
    if not reverse:
        return report, None
    reverse_engine = await open_engine(
        target_uri,
        source_uri,
        db_name=target_db,
        target_db_name=source_db,
        options=SyncOptions(reconcile_interval=30.0),
    )
    return report, reverse_engine


def _only_id_sets_differ(report: VerifyReport) -> bool:
    return all(
        not c.different.count and not c.indexes_missing_in_target and not c.indexes_extra_in_target
        for c in report.collections
    )
