"""`paletai db cutover`: stop writes on the old side, drain the sync, verify, and (optionally)
start syncing back, so that a rollback loses nothing written after the switch.

The write pause is measured from the moment we ask the old side to stop writes to the moment the
target is verified identical and ready (reverse stream positioned when --reverse is given). It
does not grow with the data: the full comparison runs *before* the pause, while the sync runs and
remembers every `_id` it applies from then on; the pause only drains the change streams to the
position at the pause, re-checks those `_id`s (and the ones the full comparison found different)
on both sides, and compares the counts. After the switch the full comparison can run once more,
outside the pause (`verify_after`), with the writes the new side takes by then set apart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import httpx
from bson.raw_bson import RawBSONDocument

from paletai.db.client import describe_hosts
from paletai.ops.db.common import (
    RAW_CODEC,
    SYNC_STATE_COLLECTION,
    RawCollection,
    RawDatabase,
    connect,
    database_from_uri,
    id_bytes,
    leading_id,
    user_collections,
)
from paletai.ops.db.sync import (
    SyncEngine,
    SyncOptions,
    event_ids,
    open_engine,
    plain_token,
    syncing,
)
from paletai.ops.db.verify import (
    SAMPLE_LIMIT,
    CollectionReport,
    VerifyReport,
    describe_id,
    verify_databases,
)
from paletai.ops.errors import OpsError
from paletai.ops.results import DbCutoverResult

RECHECK_CHUNK = 500
# Before the pause, the _ids changed since the last check are re-checked in rounds (each round
# shorter than the one before), until a round takes less than this or ROUNDS_MAX were run: the
# pause then re-checks only what changed during the last round.
ROUND_SECONDS = 0.5
ROUNDS_MAX = 5

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
    # Before the pause: the full comparison, and the _ids it found different (handed to the sync).
    pre_verify_seconds: float = 0.0
    pre_verify_repaired: int = 0
    rounds_before_pause: int = 0
    # In the pause (verify_seconds): _ids changed since the full comparison, re-checked on both
    # sides, and the counts (count_seconds of it).
    ids_rechecked: int = 0
    count_seconds: float = 0.0
    # After the switch, outside the pause: the full comparison again.
    verify_after: bool = False
    verify_after_seconds: float | None = None
    verify_after_identical: bool | None = None
    verify_after_explained: int = 0
    verify_after_differences: dict[str, list[str]] = field(default_factory=dict)
    # Change-stream positions of the new side at the switch (for verify_after; not reported).
    target_marks: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["target_marks"]
        return data

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

        # Periodic reconciles would compete with the comparisons for the servers from here on.
        engine.options.reconcile_interval = float("inf")
        engine.options.content_reconcile_interval = float("inf")

        say("verifying the whole database while the sync runs (before the pause) ...")
        engine.track_changes()
        mark = time.monotonic()
        pre_report, differing = await compare_databases(engine.source_db, engine.target_db)
        report.pre_verify_seconds = round(time.monotonic() - mark, 3)
        structural = _structural_differences(pre_report)
        if structural:
            report.collections = _counts(pre_report)
            raise CutoverFailed(
                f"the target differs in more than documents ({structural}); writes were not "
                "stopped",
                report,
                pre_report,
            )
        # Documents that differ now are mostly changes the sync is applying; the rest (a write
        # to the target behind the sync's back) are written again from the source, before the
        # pause. All of them are re-checked in the pause.
        for name, values in differing.items():
            engine.request(name, values)
        report.pre_verify_repaired = sum(len(v) for v in differing.values())
        # Writes went on during the full comparison: re-check what they touched, in rounds that
        # get shorter, so the pause's own re-check covers only the last round's writes.
        for _ in range(ROUNDS_MAX):
            await engine.drain(catch_up_timeout, reconcile=False)
            started = time.monotonic()
            changed = engine.track_changes()
            differing = await _differing(engine, _merged(changed, differing))
            report.rounds_before_pause += 1
            if time.monotonic() - started < ROUND_SECONDS:
                break

        say(f"stopping writes on the old side ({switch.method}) ...")
        paused = time.monotonic()
        report.writes_stopped_at = _now()
        await switch.stop()
        report.stop_call_seconds = round(time.monotonic() - paused, 3)
        try:
            say("draining the sync to the position at the pause ...")
            mark = time.monotonic()
            await engine.drain(drain_timeout, reconcile=False)
            report.drain_seconds = round(time.monotonic() - mark, 3)
            say("re-checking the _ids changed since the verify, and the counts ...")
            mark = time.monotonic()
            verify_report = await recheck(
                engine.source_db, engine.target_db, _merged(engine.touched(), differing)
            )
            if not verify_report.identical and _only_id_sets_differ(verify_report):
                # Counts differ: a source that sends no delete events (Cosmos DB RU) or a
                # target changed behind the sync's back. Reconcile the _id sets, check again.
                say("reconciling _id sets (the counts differ: some changes sent no event) ...")
                await engine.drain(drain_timeout, strict=True)
                verify_report = await recheck(
                    engine.source_db, engine.target_db, _merged(engine.touched(), differing)
                )
            report.verify_seconds = round(time.monotonic() - mark, 3)
            report.count_seconds = round(verify_report.seconds, 3)
            report.ids_rechecked = len(
                {id_bytes(v) for vs in _merged(engine.touched(), differing).values() for v in vs}
            )
            report.identical = verify_report.identical
            report.collections = _counts(verify_report)
            if not verify_report.identical:
                failing = _failing(engine)
                raise CutoverFailed(
                    "the target is not identical after draining"
                    + (f" (writes still failing: {failing})" if failing else ""),
                    report,
                    verify_report,
                )
            if reverse:
                await seed_reverse(engine, report.target)
        except BaseException:
            say("cutover abandoned: resuming writes on the old side")
            await switch.resume()
            raise
        report.write_pause_seconds = round(time.monotonic() - paused, 3)
        report.ready_at = _now()
        # Where the new side's changes start: writes it takes from now on are not differences.
        report.target_marks = await _stream_marks(engine.target_db)
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


def _structural_differences(report: VerifyReport) -> str:
    """Differences the sync does not repair: indexes, and collections only in the target."""
    parts = []
    for c in report.collections:
        if c.indexes_missing_in_target or c.indexes_extra_in_target or c.index_option_differences:
            parts.append(f"indexes of {c.name!r}")
        elif c.option_differences:
            parts.append(f"options of {c.name!r}")
        elif c.in_target and not c.in_source:
            parts.append(f"{c.name!r} only in the target")
    return ", ".join(parts)


def _counts(report: VerifyReport) -> list[dict[str, Any]]:
    return [
        {"name": c.name, "source": c.source_count, "target": c.target_count}
        for c in report.collections
    ]


def _merged(*groups: dict[str, list[Any]]) -> dict[str, list[Any]]:
    merged: dict[str, list[Any]] = {}
    for group in groups:
        for name, values in group.items():
            merged.setdefault(name, []).extend(values)
    return merged


def _failing(engine: SyncEngine) -> str:
    return "; ".join(
        f"{s.name}: {', '.join(s.failing_ids)} ({s.last_error})"
        for s in engine.statuses
        if s.failing
    )


async def compare_databases(
    source_db: RawDatabase, target_db: RawDatabase
) -> tuple[VerifyReport, dict[str, list[Any]]]:
    """`db verify`'s full comparison (documents, indexes, options), plus every differing `_id`."""
    differing: dict[str, list[Any]] = {}
    report = await verify_databases(source_db, target_db, differing=differing)
    return report, differing


async def _differing(engine: SyncEngine, ids: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Re-check `ids` now; the ones that differ are handed to the sync and returned."""
    differing: dict[str, list[Any]] = {}
    await recheck(engine.source_db, engine.target_db, ids, counts=False, differing=differing)
    for name, values in differing.items():
        engine.request(name, values)
    return differing


async def _fetch(coll: RawCollection, values: list[Any]) -> dict[bytes, RawBSONDocument]:
    return {id_bytes(leading_id(doc)): doc async for doc in coll.find({"_id": {"$in": values}})}


async def recheck(
    source_db: RawDatabase,
    target_db: RawDatabase,
    ids: dict[str, list[Any]],
    *,
    counts: bool = True,
    differing: dict[str, list[Any]] | None = None,
) -> VerifyReport:
    """The pause's check: these `_id`s read from both sides and compared byte for byte, and
    every collection's count (the server's count, which needs no scan on MongoDB).

    Its cost follows the writes since the full comparison, not the size of the data.
    `seconds` of the report is the time the counts took; `differing` gets every `_id` that
    differs (the report keeps a sample)."""
    report = VerifyReport(source_db=source_db.name, target_db=target_db.name)
    src_names, tgt_names = await asyncio.gather(
        user_collections(source_db), user_collections(target_db)
    )
    names = sorted(set(src_names) | set(tgt_names))
    started = time.perf_counter()

    async def count(db: RawDatabase, present: list[str], name: str) -> int:
        # Only where it exists: some servers create the collection they count.
        return await db[name].estimated_document_count() if name in present else 0

    found = [0] * (2 * len(names))
    if counts:
        found = await asyncio.gather(
            *(count(source_db, src_names, n) for n in names),
            *(count(target_db, tgt_names, n) for n in names),
        )
    report.seconds = time.perf_counter() - started

    async def one(index: int, name: str) -> CollectionReport:
        coll = CollectionReport(
            name=name,
            in_source=name in src_names,
            in_target=name in tgt_names,
            source_count=found[index],
            target_count=found[len(names) + index],
        )
        odd: list[Any] = []
        unique = list({id_bytes(v): v for v in ids.get(name, [])}.values())
        source = source_db.get_collection(name, codec_options=RAW_CODEC)
        target = target_db.get_collection(name, codec_options=RAW_CODEC)
        for start in range(0, len(unique), RECHECK_CHUNK):
            chunk = unique[start : start + RECHECK_CHUNK]
            there, here = await asyncio.gather(_fetch(source, chunk), _fetch(target, chunk))
            for value in chunk:
                key = id_bytes(value)
                a, b = there.get(key), here.get(key)
                if a is None and b is None:
                    continue
                if b is None:
                    coll.missing_in_target.add(value)
                elif a is None:
                    coll.extra_in_target.add(value)
                elif a.raw != b.raw:
                    coll.different.add(value)
                else:
                    continue
                odd.append(value)
        if differing is not None and odd:
            differing[name] = odd
        return coll

    report.collections = list(await asyncio.gather(*(one(i, n) for i, n in enumerate(names))))
    return report


async def _stream_marks(db: RawDatabase) -> dict[str, dict[str, Any]]:
    marks: dict[str, dict[str, Any]] = {}
    for name in await user_collections(db):
        stream = await db[name].watch()
        try:
            token = stream.resume_token
        finally:
            await stream.close()
        if token is not None:
            marks[name] = plain_token(token)
    return marks


async def verify_after(
    source_uri: str,
    target_uri: str,
    report: CutoverReport,
    *,
    db_name: str | None = None,
    target_db_name: str | None = None,
) -> CutoverReport:
    """The full comparison once more, after the switch (outside the pause).

    The new side may take writes by then (and a reverse sync carries them back): an `_id` that
    changed on the new side since the switch is not counted as a difference. Any other
    difference was missed by the pause's check (e.g. a write to the new side behind the sync's
    back during the pause): `verify_after_identical` is False and so is `identical`."""
    src_name = database_from_uri(source_uri, db_name)
    tgt_name = database_from_uri(target_uri, target_db_name or db_name)
    source = await connect(source_uri, role="source")
    try:
        target = await connect(target_uri, role="target")
        try:
            source_db = source.get_database(src_name, codec_options=RAW_CODEC)
            target_db = target.get_database(tgt_name, codec_options=RAW_CODEC)
            changed: set[bytes] = set()
            streams = [
                await target_db[name].watch(resume_after=token)
                for name, token in report.target_marks.items()
            ]
            stop = asyncio.Event()

            async def follow() -> None:
                # Read the new side's changes while the comparison runs (a server may prune
                # history that readers have passed).
                while True:
                    for stream in streams:
                        while (event := await stream.try_next()) is not None:
                            changed.update(id_bytes(v) for v in event_ids(event))
                    if stop.is_set():
                        return
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(follow())
            try:
                started = time.monotonic()
                _, differing = await compare_databases(source_db, target_db)
                report.verify_after_seconds = round(time.monotonic() - started, 3)
                stop.set()
                await watcher
            finally:
                watcher.cancel()
                for stream in streams:
                    await stream.close()
        finally:
            await target.close()
    finally:
        await source.close()
    report.verify_after = True
    unexplained: dict[str, list[str]] = {}
    for name, values in differing.items():
        left = [v for v in values if id_bytes(v) not in changed]
        report.verify_after_explained += len(values) - len(left)
        if left:
            unexplained[name] = [describe_id(v) for v in left[:SAMPLE_LIMIT]]
    report.verify_after_differences = unexplained
    report.verify_after_identical = not unexplained
    report.identical = report.identical and not unexplained
    return report
