"""`paletai db sync`: copy a live database and keep the copy current, for a zero-downtime move.

Per collection: open the change stream first (its resume token marks "before the copy"), copy the
documents, then replay every change since that token. Change events are treated as hints that
some `_id`s changed: the engine re-reads those `_id`s from the source and makes the target match
(replace the whole document, or delete it when the source has none). That is idempotent, so a
replayed event or a re-copied batch never doubles anything, and it does not trust event payloads,
which some servers send stale or lossy. Resume tokens and copy progress are checkpointed in the
target (`__paletai_sync`), so a killed sync restarts where it stopped. The `_id` sets of both
sides are reconciled periodically, because some sources send no delete events at all (Cosmos DB's
RU API) and a resumed range copy cannot see `_id`s of other types; after resuming from a checkpoint
the contents are compared once too, because a source may drop change history without an error.
A write the target refuses is retried for its `_id` with capped backoff until it goes through (the
ids still failing are reported), and a periodic content reconcile (every document's bytes, not
only the `_id` sets) finds an update that was missed; periodic reconciles scan in the background,
so events keep flowing while they run, and only their fixes go through the collection's writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, ReplaceOne
from pymongo.asynchronous.change_stream import AsyncCollectionChangeStream
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure, PyMongoError

from paletai.db.client import describe_hosts
from paletai.ops.db.common import (
    RAW_CODEC,
    SYNC_STATE_COLLECTION,
    RawClient,
    RawCollection,
    RawDatabase,
    connect,
    create_indexes,
    database_from_uri,
    id_bytes,
    index_specs,
    leading_id,
    user_collections,
)
from paletai.ops.db.kinds import collection_spec, ensure_collection, prepare_views
from paletai.ops.db.verify import (
    SAMPLE_LIMIT,
    OrderDisagrees,
    describe_id,
    hashed_compare,
    merge_compare,
)
from paletai.ops.errors import OpsError
from paletai.ops.results import DbSyncResult, SyncedCollection

COPY_BATCH = 1000
EVENT_BATCH = 1000
APPLY_CHUNK = 500
DUPLICATE_KEY = 11000
HISTORY_LOST = {136, 280, 286}  # CappedPositionLost, ChangeStreamFatalError, HistoryLost

# Called after each applied batch with (collection, documents written, monotonic time); benchmarks
# use it to measure the write-to-target lag end to end.
ApplyObserver = Callable[[str, list[RawBSONDocument], float], None]


@dataclass
class CollectionStatus:
    name: str
    phase: str = "starting"  # starting | copy | stream | retrying | stopped
    copied: int = 0
    copy_total: int = 0
    events: int = 0
    keys_applied: int = 0
    lag: float = 0.0
    caught_up: bool = False
    reconciles: int = 0
    reconcile_fixes: int = 0
    write_errors: int = 0
    retries: int = 0
    last_error: str | None = None
    drained_generation: int = 0
    content_reconciles: int = 0
    failing: int = 0  # _ids whose last write failed (retried with backoff)
    failing_ids: list[str] = field(default_factory=list)  # the first few, as Extended JSON


@dataclass
class SyncOptions:
    drop: bool = False
    force: bool = False
    poll_interval: float = 0.05
    reconcile_interval: float = 30.0
    retry_initial: float = 0.5
    retry_max: float = 5.0
    observer: ApplyObserver | None = None
    # Every document's bytes compared (a missed update found, not only a missed insert/delete).
    content_reconcile_interval: float = 900.0
    # A failed write of one _id is retried after this, doubling up to the cap.
    write_retry_initial: float = 0.25
    write_retry_max: float = 30.0


def _event_time(event: Mapping[str, Any]) -> dt.datetime | None:
    wall = event.get("wallTime")
    if isinstance(wall, dt.datetime):
        return wall
    cluster = event.get("clusterTime")
    if isinstance(cluster, bson.Timestamp):
        return cluster.as_datetime()
    if isinstance(cluster, dt.datetime):
        return cluster
    return None


def event_ids(event: Mapping[str, Any]) -> list[Any]:
    """The `_id` an event says changed: the document's own (`fullDocument._id`) when the event
    carries the document, else documentKey._id.

    On MongoDB the two are the same value (an `_id` never changes, and updateLookup looks the
    document up by documentKey). The embedded stand-in mangles documentKey: it stringifies an
    int `_id`, and names a string `_id` of 24 hex digits as an ObjectId; and a filter on that
    ObjectId matches the string `_id` there, so applying the mangled key as a delete removed
    the document from the target. A document-valued fullDocument._id is a mangled payload (the
    stand-in turns ObjectIds into {"__neosqlite_objectid__": ...}), never a key: then
    documentKey names the document.
    """
    full = event.get("fullDocument")
    if isinstance(full, Mapping) and "_id" in full and not isinstance(full["_id"], Mapping):
        return [full["_id"]]
    key = event.get("documentKey")
    if isinstance(key, Mapping) and "_id" in key:
        return [key["_id"]]
    return []


@dataclass
class PendingWrite:
    """An `_id` to make equal on the target: asked for (attempts 0), or whose write failed."""

    value: Any
    attempts: int = 0
    due: float = 0.0
    error: str = ""


class _Recopy(Exception):
    """The change stream can no longer be resumed: copy the collection again."""


class CollectionSync:
    """Copies and then follows one collection. All target writes of a collection go through
    this one coroutine, so an event and a reconcile never race each other on the same `_id`."""

    def __init__(
        self,
        engine: SyncEngine,
        name: str,
    ) -> None:
        self.engine = engine
        self.name = name
        self.status = CollectionStatus(name)
        self.source: RawCollection = engine.source_db.get_collection(name, codec_options=RAW_CODEC)
        self.target: RawCollection = engine.target_db.get_collection(name, codec_options=RAW_CODEC)
        self.state_coll = engine.target_db.get_collection(SYNC_STATE_COLLECTION)
        self._recopy = False
        # _ids to write again: failed writes (with their backoff) and ids others asked for.
        self.pending: dict[bytes, PendingWrite] = {}
        # While a cutover tracks changes: every _id this collection applied since it began.
        self.touched: dict[bytes, Any] | None = {} if engine.tracking else None
        self._scan: asyncio.Task[list[Any]] | None = None
        self._scan_content = False

    # -- checkpoint -----------------------------------------------------------------------

    async def load_state(self) -> dict[str, Any] | None:
        doc = await self.state_coll.find_one({"_id": self.name})
        if doc is None:
            return None
        state: dict[str, Any] = bson.decode(doc.raw, RAW_CODEC.with_options(document_class=dict))
        if state.get("source") != self.engine.source_id:
            raise OpsError(
                f"the target's sync checkpoint for {self.name!r} belongs to a sync from "
                f"{state.get('source')!r}, not {self.engine.source_id!r}; use --reset to start over"
            )
        return state

    async def save_state(self, **fields: Any) -> None:
        update: dict[str, Any] = {
            "$set": {
                **fields,
                "source": self.engine.source_id,
                "updated_at": dt.datetime.now(dt.UTC),
            }
        }
        await self.state_coll.update_one({"_id": self.name}, update, upsert=True)

    # -- main loop --------------------------------------------------------------------------

    async def run(self) -> None:
        delay = self.engine.options.retry_initial
        while not self.engine.stopping.is_set():
            try:
                if self._recopy:
                    await self._open_new_copy(mode="recopy")
                    self._recopy = False
                await self._run_once()
                if self.engine.stopping.is_set():
                    break
                return
            except _Recopy as exc:
                self.status.last_error = str(exc)
                self._recopy = True
                continue
            except (ConnectionFailure, OperationFailure) as exc:
                if isinstance(exc, OperationFailure) and not _retryable(exc):
                    raise
                self.status.phase = "retrying"
                self.status.retries += 1
                self.status.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.engine.stopping.wait(), delay)
                delay = min(delay * 2, self.engine.options.retry_max)
                continue
            delay = self.engine.options.retry_initial
        self.status.phase = "stopped"

    async def _open_new_copy(self, *, mode: str) -> dict[str, Any]:
        # Open the change stream before copying: its token marks a point before any copied read.
        stream = await self.source.watch(full_document="updateLookup")
        try:
            token = stream.resume_token
        finally:
            await stream.close()
        if token is None:
            raise OpsError(f"the source gave no change-stream resume token for {self.name!r}")
        state = {"phase": "copy", "mode": mode, "token": plain_token(token), "copied": 0}
        await self.state_coll.update_one({"_id": self.name}, {"$unset": {"last_id": ""}})
        await self.save_state(**state)
        return state

    async def _run_once(self) -> None:
        state = await self.load_state()
        if state is None:
            state = await self._open_new_copy(mode="fresh")
        if state["phase"] == "copy":
            await self._create_like_source()
            resumed = "last_id" in state
            if not await self._copy(state):
                return
            await create_indexes(self.target, await index_specs(self.source))
            await self.save_state(phase="stream")
            state["phase"] = "stream"
            # A resumed range copy sees only _ids above the last one of the same type, and its
            # stream resumes from a stored token (see _follow).
            await self.reconcile(content=resumed)
            await self._follow(state["token"])
        else:
            await create_indexes(self.target, await index_specs(self.source))
            await self._follow(state["token"], resumed=True)

    async def _create_like_source(self) -> None:
        """The target collection with the source's options (capped, validator, collation...)."""
        spec = await collection_spec(self.engine.source_db, self.name)
        if spec is not None:
            await ensure_collection(self.engine.target_db, spec)

    # -- copy -------------------------------------------------------------------------------

    async def _copy(self, state: dict[str, Any]) -> bool:
        """Copy the documents past the checkpoint; False when stopped before the end."""
        self.status.phase = "copy"
        self.status.copy_total = await self.source.estimated_document_count()
        self.status.copied = int(state.get("copied", 0))
        query: dict[str, Any] = {}
        if "last_id" in state:
            query = {"_id": {"$gt": state["last_id"]}}
            # Recorded so that an operator (and the tests) can see the copy was resumed.
            await self.save_state(copy_resumed_from=self.status.copied)
        upsert = state.get("mode") == "recopy"
        cursor = self.source.find(query, batch_size=COPY_BATCH).sort("_id", 1)
        batch: list[RawBSONDocument] = []
        async for doc in cursor:
            batch.append(doc)
            if len(batch) >= COPY_BATCH:
                await self._copy_batch(batch, upsert=upsert)
                batch = []
            if self.engine.stopping.is_set():
                return False
        if batch:
            await self._copy_batch(batch, upsert=upsert)
        return True

    async def _copy_batch(self, batch: list[RawBSONDocument], *, upsert: bool) -> None:
        if upsert:
            failed = await self._write(
                [ReplaceOne({"_id": leading_id(d)}, d, upsert=True) for d in batch]
            )
            for index, error in failed.items():
                self._failed(leading_id(batch[index]), error, time.monotonic())
            self._count_failing()
        else:
            try:
                await self.target.insert_many(batch, ordered=False)
            except BulkWriteError as exc:
                # A duplicate _id is the batch copied just before a crash; another unique index
                # may clash too. Either way the _id is written again from the source (idempotent),
                # and one the target still refuses is retried with backoff until it goes through.
                refused = [leading_id(batch[e["index"]]) for e in exc.details["writeErrors"]]
                await self.apply_ids(refused)
        if self.touched is not None:
            self.touched.update((id_bytes(v), v) for v in map(leading_id, batch))
        self.status.copied += len(batch)
        await self.save_state(last_id=leading_id(batch[-1]), copied=self.status.copied)

    # -- follow -----------------------------------------------------------------------------

    async def _follow(self, token: Mapping[str, Any], *, resumed: bool = False) -> None:
        """Apply the changes since `token` until stopped. `resumed`: the token is a checkpoint
        of an earlier run or attempt, so the stream replays what was read but not yet
        checkpointed then; a server that dropped that history without saying so (the embedded
        stand-in does, docs/embedded-mongodb.md) is made up for by one content comparison.

        Periodic reconciles scan in a background task while events keep being applied; what
        they find is applied here, by this one writer. A drain reconciles inline."""
        self.status.phase = "stream"
        try:
            stream = await self.source.watch(full_document="updateLookup", resume_after=token)
        except OperationFailure as exc:
            if exc.code in HISTORY_LOST:
                raise _Recopy(f"change history lost ({exc.code}); copying again") from exc
            raise
        engine = self.engine
        last_reconcile = last_content = time.monotonic()
        try:
            if resumed:
                await self.reconcile(content=True)
            while not engine.stopping.is_set():
                generation = engine.drain_generation
                drained = await self._pull_and_apply(stream)
                await self._apply_pending()
                await self._finish_scan()
                if not drained:
                    continue
                wants_drain = generation > self.status.drained_generation
                mode = engine.drain_modes.get(generation, "strict")
                if wants_drain:
                    # Failed writes get one more try now, whatever their backoff says.
                    await self._apply_pending(force=True)
                    clean = True
                    if mode != "events":
                        await self._cancel_scan()
                        fixes = await self.reconcile()
                        last_reconcile = time.monotonic()
                        clean = fixes == 0 or mode != "strict"
                    if clean and await self._pull_and_apply(stream):
                        self.status.drained_generation = generation
                        engine.notify()
                        continue
                elif self._scan is None:
                    now = time.monotonic()
                    if now - last_content >= engine.options.content_reconcile_interval:
                        self._start_scan(content=True)
                        last_content = last_reconcile = now
                    elif now - last_reconcile >= engine.options.reconcile_interval:
                        self._start_scan(content=False)
                        last_reconcile = now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(engine.stopping.wait(), engine.options.poll_interval)
        finally:
            await self._cancel_scan()
            await stream.close()

    async def _pull_and_apply(self, stream: AsyncCollectionChangeStream[RawBSONDocument]) -> bool:
        """Apply the events available now; True when the stream had nothing more to give."""
        events: list[RawBSONDocument] = []
        drained = False
        try:
            while len(events) < EVENT_BATCH:
                event = await stream.try_next()
                if event is None:
                    drained = True
                    break
                events.append(event)
        except OperationFailure as exc:
            if exc.code in HISTORY_LOST:
                raise _Recopy(f"change history lost ({exc.code}); copying again") from exc
            raise
        if events:
            restart = False
            ids: list[Any] = []
            for event in events:
                kind = event.get("operationType")
                if kind in {"drop", "rename", "dropDatabase", "invalidate"}:
                    restart = True
                ids.extend(event_ids(event))
            await self.apply_ids(ids)
            self.status.events += len(events)
            when = _event_time(events[-1])
            if when is not None:
                self.status.lag = max(0.0, (dt.datetime.now(dt.UTC) - _aware(when)).total_seconds())
            if restart:
                raise _Recopy(f"the source collection was {events[-1].get('operationType')}ped")
        elif drained:
            self.status.lag = 0.0
        self.status.caught_up = drained
        token = stream.resume_token
        if token is not None and (events or drained):
            await self.save_state(token=plain_token(token))
        return drained

    # -- writes -----------------------------------------------------------------------------

    async def apply_ids(self, ids: Iterable[Any]) -> int:
        """Make the target's documents with these _ids equal the source's (or absent).

        An `_id` whose write fails is kept in `pending` and retried with capped backoff (the
        follow loop does that) until a write of it succeeds."""
        unique: dict[bytes, Any] = {}
        for value in ids:
            unique.setdefault(id_bytes(value), value)
        if self.touched is not None:
            self.touched.update(unique)
        values = list(unique.values())
        for start in range(0, len(values), APPLY_CHUNK):
            chunk = values[start : start + APPLY_CHUNK]
            found: dict[bytes, RawBSONDocument] = {}
            async for doc in self.source.find({"_id": {"$in": chunk}}):
                found[id_bytes(leading_id(doc))] = doc
            ops: list[ReplaceOne[RawBSONDocument] | DeleteOne] = []
            for value in chunk:
                current = found.get(id_bytes(value))
                if current is not None:
                    ops.append(ReplaceOne({"_id": leading_id(current)}, current, upsert=True))
                else:
                    ops.append(DeleteOne({"_id": value}))
            failed = await self._write(ops)
            now = time.monotonic()
            for index, value in enumerate(chunk):
                if index in failed:
                    self._failed(value, failed[index], now)
                else:
                    self.pending.pop(id_bytes(value), None)
            self._count_failing()
            self.status.keys_applied += len(chunk)
            if self.engine.options.observer is not None:
                self.engine.options.observer(self.name, list(found.values()), time.monotonic())
        return len(values)

    async def _write(self, ops: list[ReplaceOne[RawBSONDocument] | DeleteOne]) -> dict[int, str]:
        """Write `ops` (unordered); the ones the target refused: {index in ops: its message}."""
        if not ops:
            return {}
        try:
            await self.target.bulk_write(ops, ordered=False, bypass_document_validation=True)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            # A unique key can clash for a moment when two documents swap a value: once the
            # others are written, the clashing ones go through.
            again = [e["index"] for e in errors if e.get("code") == DUPLICATE_KEY]
            failed = {
                int(e["index"]): str(e.get("errmsg"))
                for e in errors
                if e.get("code") != DUPLICATE_KEY
            }
            if again:
                try:
                    await self.target.bulk_write(
                        [ops[i] for i in again], ordered=False, bypass_document_validation=True
                    )
                except BulkWriteError as retry_exc:
                    for e in retry_exc.details["writeErrors"]:
                        failed[again[e["index"]]] = str(e.get("errmsg"))
            if failed:
                self.status.write_errors += len(failed)
                self.status.last_error = f"write error: {next(iter(failed.values()))}"
            return failed
        return {}

    def _failed(self, value: Any, error: str, now: float) -> None:
        key = id_bytes(value)
        entry = self.pending.get(key) or PendingWrite(value)
        entry.attempts += 1
        entry.error = error
        options = self.engine.options
        backoff = options.write_retry_initial * 2 ** min(entry.attempts - 1, 30)
        entry.due = now + min(backoff, options.write_retry_max)
        self.pending[key] = entry

    def _count_failing(self) -> None:
        failing = [p for p in self.pending.values() if p.attempts]
        self.status.failing = len(failing)
        self.status.failing_ids = [describe_id(p.value) for p in failing[:SAMPLE_LIMIT]]

    def request(self, ids: Iterable[Any]) -> None:
        """Ask this collection's writer to make these `_id`s equal to the source's soon."""
        for value in ids:
            self.pending.setdefault(id_bytes(value), PendingWrite(value))

    async def _apply_pending(self, *, force: bool = False) -> None:
        """Write again the pending `_id`s that are due (all of them with `force`)."""
        if not self.pending:
            return
        now = time.monotonic()
        due = [p.value for p in self.pending.values() if force or p.due <= now]
        if due:
            await self.apply_ids(due)

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self, *, content: bool = False) -> int:
        """Compare the _id sets of both sides (and with `content`, every document's bytes);
        re-apply every _id found on one side only (or different). Returns how many of those
        were written (an `_id` whose write still fails is left to its retries)."""
        return await self._apply_fixes(await self._scan_ids(content=content), content=content)

    async def _scan_ids(self, *, content: bool) -> list[Any]:
        diff = _IdCollector()
        try:
            await merge_compare(self.source, self.target, diff, ids_only=not content)
        except OrderDisagrees:
            diff = _IdCollector()
            await hashed_compare(self.source, self.target, diff, ids_only=not content)
        return diff.ids

    async def _apply_fixes(self, ids: list[Any], *, content: bool) -> int:
        if ids:
            await self.apply_ids(ids)
        self.status.reconciles += 1
        self.status.content_reconciles += int(content)
        self.status.reconcile_fixes += len(ids)
        return sum(1 for v in ids if not self.pending.get(id_bytes(v), PendingWrite(v)).attempts)

    def _start_scan(self, *, content: bool) -> None:
        self._scan_content = content
        self._scan = asyncio.create_task(
            self._scan_ids(content=content), name=f"reconcile {self.name}"
        )

    async def _finish_scan(self) -> None:
        """Apply what a finished background scan found (its error, if any, is raised here)."""
        if self._scan is None or not self._scan.done():
            return
        task, self._scan = self._scan, None
        await self._apply_fixes(task.result(), content=self._scan_content)

    async def _cancel_scan(self) -> None:
        if self._scan is None:
            return
        task, self._scan = self._scan, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class _IdCollector:
    def __init__(self) -> None:
        self.ids: list[Any] = []

    def seen(self, source: int, target: int) -> None:
        return None

    def missing(self, value: Any) -> None:
        self.ids.append(value)

    def extra(self, value: Any) -> None:
        self.ids.append(value)

    def different(self, value: Any) -> None:
        self.ids.append(value)


def _retryable(exc: OperationFailure) -> bool:
    return bool(
        exc.has_error_label("ResumableChangeStreamError")
        or exc.has_error_label("RetryableWriteError")
        or exc.code in {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
    )


def plain_token(token: Any) -> dict[str, Any]:
    """A resume token as a plain dict, to store in the checkpoint."""
    if isinstance(token, RawBSONDocument):
        return bson.decode(token.raw)
    return dict(token)


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@dataclass
class SyncSummary:
    collections: dict[str, CollectionStatus] = field(default_factory=dict)

    @property
    def write_errors(self) -> int:
        return sum(s.write_errors for s in self.collections.values())

    @property
    def failing(self) -> int:
        return sum(s.failing for s in self.collections.values())

    def to_result(self, *, caught_up: bool) -> DbSyncResult:
        """`db sync --json`: caught up or not, and each collection's status at the end."""
        return DbSyncResult(
            caught_up=caught_up,
            write_errors=self.write_errors,
            failing=self.failing,
            collections={
                n: SyncedCollection.model_validate(vars(s)) for n, s in self.collections.items()
            },
        )


class SyncEngine:
    """Runs one CollectionSync per source collection; picks up collections created later."""

    def __init__(
        self,
        source_client: RawClient,
        target_client: RawClient,
        source_db: str,
        target_db: str,
        *,
        source_id: str,
        options: SyncOptions | None = None,
    ) -> None:
        self.source_client = source_client
        self.target_client = target_client
        self.source_db: RawDatabase = source_client.get_database(source_db, codec_options=RAW_CODEC)
        self.target_db: RawDatabase = target_client.get_database(target_db, codec_options=RAW_CODEC)
        self.source_id = source_id
        self.options = options or SyncOptions()
        self.workers: dict[str, CollectionSync] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.stopping = asyncio.Event()
        self.drain_generation = 0
        self.drain_modes: dict[int, str] = {}
        self._changed = asyncio.Condition()
        self.failure: BaseException | None = None
        self.tracking = False

    @property
    def statuses(self) -> list[CollectionStatus]:
        return [w.status for w in self.workers.values()]

    def track_changes(self) -> dict[str, list[Any]]:
        """From now on, remember every `_id` each collection applies (see `touched`): a new
        window; returns the `_id`s of the window it ends (none the first time)."""
        previous = self.touched() if self.tracking else {}
        self.tracking = True
        for worker in self.workers.values():
            worker.touched = {}
        return previous

    def touched(self) -> dict[str, list[Any]]:
        """The `_id`s applied per collection since `track_changes`."""
        return {n: list((w.touched or {}).values()) for n, w in self.workers.items()}

    def request(self, name: str, ids: Iterable[Any]) -> None:
        """Have collection `name`'s writer make these `_id`s equal to the source's."""
        worker = self.workers.get(name)
        if worker is not None:
            worker.request(ids)

    def notify(self) -> None:
        async def _notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.ensure_future(_notify())

    async def check_target(self) -> None:
        """Refuse a target that holds data this sync did not write, unless told otherwise."""
        state = self.target_db.get_collection(SYNC_STATE_COLLECTION)
        started = {str(d["_id"]) async for d in state.find({}, {"_id": 1})}
        busy = []
        for name in await user_collections(self.source_db):
            if name in started:
                continue
            count = await self.target_db[name].estimated_document_count()
            if count and self.options.drop:
                await self.target_db.drop_collection(name)
            elif count:
                busy.append(f"{name} ({count} documents)")
        if busy and not self.options.force:
            raise OpsError(
                f"the target database {self.target_db.name!r} is not empty: "
                + ", ".join(busy)
                + ". Use --drop to replace these collections or --force to sync into them."
            )

    async def _start_new_collections(self) -> None:
        for name in await user_collections(self.source_db):
            if name not in self.workers:
                worker = CollectionSync(self, name)
                self.workers[name] = worker
                self.tasks[name] = asyncio.create_task(self._guard(worker), name=f"sync {name}")

    async def _guard(self, worker: CollectionSync) -> None:
        try:
            await worker.run()
        except Exception as exc:
            self.failure = exc
            worker.status.last_error = str(exc)
            self.stopping.set()
            raise

    async def start(self) -> None:
        await self.check_target()
        await prepare_views(self.source_db, self.target_db)
        await self._start_new_collections()

    async def supervise(self) -> None:
        """Until stopped: look for new collections now and then (source outages are retried)."""
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.options.reconcile_interval)
            if self.stopping.is_set():
                break
            with contextlib.suppress(PyMongoError):
                await self._start_new_collections()

    async def drain(
        self, wait_seconds: float | None = None, *, strict: bool = False, reconcile: bool = True
    ) -> None:
        """Return once every collection has applied everything the source had when called,
        then reconciled the `_id` sets and applied what was still pending.

        `strict` (writes stopped): repeat until a reconcile finds both `_id` sets equal. Under
        live writes that may never happen (a write lands between the two scans), so it is off
        for `--until-synced` and for the catch-up before a cutover. `reconcile=False`: only
        empty the change streams (cutover then verifies, which sees every difference anyway).
        """
        self.drain_generation += 1
        generation = self.drain_generation
        self.drain_modes[generation] = (
            "events" if not reconcile else "strict" if strict else "reconcile"
        )
        await self._start_new_collections()

        async def wait() -> None:
            async with self._changed:
                while (
                    not all(s.drained_generation >= generation for s in self.statuses)
                    and not self.stopping.is_set()
                ):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.5)
            if self.failure is not None:
                raise self.failure

        await asyncio.wait_for(wait(), wait_seconds)

    async def wait_stopped(self) -> None:
        """Until the sync is stopped (Ctrl-C, `stopping.set()`); a worker's failure is raised."""
        await self.stopping.wait()
        if self.failure is not None:
            raise self.failure

    async def stop(self) -> None:
        self.stopping.set()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10)

    def summary(self) -> SyncSummary:
        return SyncSummary(collections={w.name: w.status for w in self.workers.values()})


async def open_engine(
    source_uri: str,
    target_uri: str,
    *,
    db_name: str | None = None,
    target_db_name: str | None = None,
    options: SyncOptions | None = None,
    reset: bool = False,
    timeout_ms: int = 5000,
) -> SyncEngine:
    """Connect both sides (with clear errors) and build an engine; the caller closes clients."""
    src_name = database_from_uri(source_uri, db_name)
    tgt_name = database_from_uri(target_uri, target_db_name or db_name)
    source = await connect(source_uri, role="source", timeout_ms=timeout_ms)
    try:
        target = await connect(target_uri, role="target", timeout_ms=timeout_ms)
    except BaseException:
        await source.close()
        raise
    if reset:
        await target[tgt_name].drop_collection(SYNC_STATE_COLLECTION)
    return SyncEngine(
        source,
        target,
        src_name,
        tgt_name,
        source_id=f"{describe_hosts(source_uri)}/{src_name}",
        options=options,
    )


async def close_engine(engine: SyncEngine) -> None:
    await engine.stop()
    await engine.source_client.close()
    await engine.target_client.close()


@contextlib.asynccontextmanager
async def syncing(
    source: str | SyncEngine,
    target_uri: str | None = None,
    *,
    db_name: str | None = None,
    target_db_name: str | None = None,
    options: SyncOptions | None = None,
    reset: bool = False,
    timeout_ms: int = 5000,
) -> AsyncIterator[SyncEngine]:
    """A running sync for the body of the `async with`: the one owner of an engine's lifecycle.

    Opens the engine (from two URIs, or takes one built elsewhere: cutover's reverse sync shares
    the forward sync's clients), starts it, supervises it (new collections), and on exit (also on
    an error or a cancellation) stops it and closes both clients. A failure of the engine is
    raised by `drain` and `wait_stopped` inside the body, and on exit when the body ends well.
    """
    if isinstance(source, SyncEngine):
        engine = source
    else:
        if target_uri is None:
            raise TypeError("syncing(source_uri, target_uri): the target URI is missing")
        engine = await open_engine(
            source,
            target_uri,
            db_name=db_name,
            target_db_name=target_db_name,
            options=options,
            reset=reset,
            timeout_ms=timeout_ms,
        )
    supervisor: asyncio.Task[None] | None = None
    try:
        await engine.start()
        supervisor = asyncio.create_task(engine.supervise(), name="sync supervisor")
        yield engine
        if engine.failure is not None:
            raise engine.failure
    finally:
        engine.stopping.set()
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await supervisor
        await close_engine(engine)


async def sync_until_synced(
    source_uri: str,
    target_uri: str,
    *,
    db_name: str | None = None,
    target_db_name: str | None = None,
    options: SyncOptions | None = None,
    reset: bool = False,
    wait_seconds: float | None = None,
    started: Callable[[SyncEngine], None] | None = None,
) -> DbSyncResult:
    """`db sync --until-synced`: sync until the target has caught up, then stop; its result.

    `started` sees the running engine (the CLI's status line and Ctrl-C handler use it). Raises
    OpsError when stopped or out of time before the target caught up.
    """
    async with syncing(
        source_uri,
        target_uri,
        db_name=db_name,
        target_db_name=target_db_name,
        options=options,
        reset=reset,
    ) as engine:
        if started is not None:
            started(engine)
        try:
            await engine.drain(wait_seconds)
        except TimeoutError:
            raise OpsError(
                f"the target did not catch up within {wait_seconds:g} s; run again (it resumes) "
                "or give a longer --timeout"
            ) from None
        if engine.stopping.is_set() and engine.failure is None:
            raise OpsError("stopped before the target caught up")
        return engine.summary().to_result(caught_up=True)
