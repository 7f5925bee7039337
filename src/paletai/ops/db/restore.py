"""`paletai db restore`: load a dump (ours or stock mongodump's) into a database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError
from rich.progress import Progress, TaskID

from paletai.ops.db.common import (
    RAW_CODEC,
    RawClient,
    RawCollection,
    RawDatabase,
    connect,
    create_indexes,
)
from paletai.ops.db.dumpfmt import (
    DumpedAuth,
    DumpedCollection,
    count_bson_file,
    count_documents,
    read_dump,
    read_dumped_auth,
    read_raw_documents,
)
from paletai.ops.db.kinds import (
    KIND_COLLECTION,
    KIND_VIEW,
    CollectionSpec,
    KindNotKept,
    ensure_collection,
)
from paletai.ops.db.namespaces import NamespaceMapper, split_namespace
from paletai.ops.db.oplog import (
    OplogApplier,
    OplogReplay,
    dump_change_file,
    read_change_entries,
    replay,
)
from paletai.ops.db.parallel import DEFAULT_PARALLEL, check_parallel, each_collection
from paletai.ops.db.users import count_dumped, require_users, restore_users
from paletai.ops.errors import OpsError
from paletai.ops.results import DbRestoreResult

MAX_BATCH_DOCS = 1000
MAX_BATCH_BYTES = 16 * 1024 * 1024
IN_FLIGHT_BATCHES = 2
DUPLICATE_KEY = 11000
REFUSED = "refused (not empty)"


@dataclass
class CollectionRestoreResult:
    namespace: str
    source_namespace: str
    documents: int = 0
    inserted: int = 0
    duplicates: int = 0
    errors: int = 0
    indexes: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    # With --dry-run: "create", "drop and restore", "merge" or "refused (not empty)".
    action: str | None = None
    kind: str = "collection"
    problem: str | None = None  # the target could not hold this kind or these options


@dataclass
class RestoreResult:
    collections: list[CollectionRestoreResult] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    users: int | None = None  # with --include-users
    roles: int | None = None
    oplog: OplogReplay | None = None  # with --oplog-replay

    @property
    def ok(self) -> bool:
        return all(c.errors == 0 and c.problem is None for c in self.collections)

    @property
    def refused(self) -> list[CollectionRestoreResult]:
        """Collections a dry run found not empty (the restore would refuse them)."""
        return [c for c in self.collections if c.action == REFUSED]

    def total(self, attr: str) -> int:
        return sum(int(getattr(c, attr)) for c in self.collections)

    def to_result(self) -> DbRestoreResult:
        return DbRestoreResult.model_validate({**asdict(self), "ok": self.ok})


async def _insert_batch(
    coll: RawCollection, batch: list[RawBSONDocument], result: CollectionRestoreResult
) -> None:
    try:
        # The source holds these documents already: the target's validator must not refuse them.
        outcome = await coll.insert_many(batch, ordered=False, bypass_document_validation=True)
        result.inserted += len(batch) if outcome.acknowledged else 0
    except BulkWriteError as exc:
        details = exc.details
        result.inserted += int(details.get("nInserted", 0))
        for error in details.get("writeErrors", []):
            if error.get("code") == DUPLICATE_KEY:
                result.duplicates += 1
            else:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(str(error.get("errmsg")))


async def restore_collection(
    db: RawDatabase,
    target_name: str,
    dumped: DumpedCollection,
    result: CollectionRestoreResult,
    *,
    progress: Progress | None = None,
    task: TaskID | None = None,
    documents: Iterable[RawBSONDocument] | None = None,
    total: int | None = None,
    in_flight_batches: int = IN_FLIGHT_BATCHES,
) -> None:
    """Create the collection (any kind, with its options), insert the dumped documents in
    unordered batches, then build its indexes. A kind or options the target cannot hold is
    `result.problem` (the documents of a plain collection are restored all the same).

    The documents come from `dumped.data_path`, or from `documents` (a blob being downloaded)
    when given, with `total` for the progress bar. `in_flight_batches`: insert batches sent
    before waiting for the oldest (reading the file overlaps the inserts)."""
    spec = CollectionSpec(target_name, dumped.kind, dumped.options)
    result.kind = spec.kind
    try:
        await ensure_collection(db, spec)
    except KindNotKept as exc:
        result.problem = str(exc)
        if spec.kind != KIND_COLLECTION:
            return  # nothing of that kind exists on the target to put documents in
    if spec.data_collection is None:
        return  # a view: its definition is all there is
    coll = db.get_collection(spec.data_collection, codec_options=RAW_CODEC)
    if documents is None and dumped.data_path is not None:
        documents = read_raw_documents(dumped.data_path)
    if progress is not None and task is None:
        if total is None:
            total = count_bson_file(dumped.data_path)[0] if dumped.data_path else 0
        task = progress.add_task(result.namespace, total=total if total >= 0 else None, bytes=0)
    if progress is not None and task is not None:
        progress.start_task(task)  # its clock (docs/s, elapsed) runs from here, not from queued
    started = time.perf_counter()
    in_flight: list[asyncio.Task[None]] = []
    batch: list[RawBSONDocument] = []
    batch_bytes = 0

    async def flush() -> None:
        nonlocal batch, batch_bytes
        if not batch:
            return
        in_flight.append(asyncio.create_task(_insert_batch(coll, batch, result)))
        batch, batch_bytes = [], 0
        if len(in_flight) >= in_flight_batches:
            await in_flight.pop(0)
        if progress is not None and task is not None:
            progress.update(task, completed=result.documents, bytes=result.bytes)

    try:
        if documents is not None:
            for doc in documents:
                size = len(doc.raw)
                if batch and (len(batch) >= MAX_BATCH_DOCS or batch_bytes + size > MAX_BATCH_BYTES):
                    await flush()
                batch.append(doc)
                batch_bytes += size
                result.documents += 1
                result.bytes += size
            await flush()
        for pending in in_flight:
            await pending
    finally:
        for pending in in_flight:
            pending.cancel()
    # A time-series' indexes are made through the collection, not on its buckets.
    index_target = db.get_collection(target_name, codec_options=RAW_CODEC)
    result.indexes = await create_indexes(index_target, dumped.indexes)
    result.seconds = time.perf_counter() - started
    if progress is not None and task is not None:
        done = result.documents
        progress.update(task, completed=done, total=done, bytes=result.bytes)


def not_empty_error(busy: list[str]) -> OpsError:
    return OpsError(
        "the target is not empty: "
        + ", ".join(busy)
        + ". Use --drop to replace these collections, or --force to merge into them "
        "(existing _ids are kept and counted as duplicates)."
    )


async def _existing_counts(client: RawClient, targets: list[str]) -> dict[str, int]:
    """Documents in each target namespace that exists. Counts only collections that are
    there: on the embedded stand-in `count` creates the collection it counts, and a check
    (or a dry run) must leave the target as it found it."""
    present: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for target in targets:
        db_name, coll_name = split_namespace(target)
        if db_name not in present:
            present[db_name] = set(await client[db_name].list_collection_names())
        if coll_name in present[db_name]:
            counts[target] = await client[db_name][coll_name].estimated_document_count()
    return counts


def _auth_target(auths: list[DumpedAuth], mapper: NamespaceMapper, dump_dir: Path) -> DumpedAuth:
    """The one database whose users and roles --include-users restores."""
    if not auths:
        raise OpsError(
            f"--include-users: the dump in {dump_dir} holds no users or roles "
            "($admin.system.users.bson / $admin.system.roles.bson); back up with --include-users"
        )
    if len(auths) > 1:
        raise OpsError(
            "--include-users: the dump holds users of several databases ("
            + ", ".join(a.db for a in auths)
            + "); restore one at a time with --ns-include 'DB.*'"
        )
    if mapper.renames_any:
        # A user's _id and db name its database: renamed, they would describe another one.
        raise OpsError(
            "--include-users cannot be combined with --ns-from/--ns-to (users and roles are "
            "defined on their database's name); restore them without renaming"
        )
    return auths[0]


async def restore(
    uri: str,
    dump_dir: Path,
    *,
    drop: bool = False,
    force: bool = False,
    mapper: NamespaceMapper | None = None,
    progress: Progress | None = None,
    parallel: int = DEFAULT_PARALLEL,
    dry_run: bool = False,
    include_users: bool = False,
    oplog_replay: bool = False,
) -> RestoreResult:
    """Restore every (included) collection of a dump, `parallel` at a time; refuses non-empty
    targets unless asked. `dry_run` says what would go where and writes nothing;
    `include_users` also restores the dumped users and roles (as mongorestore
    --restoreDbUsersAndRoles). A dump's oplog (`oplog.bson`, or ours) is applied last, and
    only with `oplog_replay`."""
    check_parallel(parallel)
    mapper = mapper or NamespaceMapper()
    change_file = dump_change_file(dump_dir, oplog_replay=oplog_replay)
    plan: list[tuple[str, DumpedCollection]] = []
    for dumped in read_dump(dump_dir):
        target = mapper.map(dumped.namespace)
        if target is not None:
            plan.append((target, dumped))
    if not plan:
        raise OpsError(f"no collection of the dump in {dump_dir} matches the namespace filter")
    plan.sort(key=lambda item: item[1].kind == KIND_VIEW)  # views last, over restored data
    auth = _auth_target(read_dumped_auth(dump_dir), mapper, dump_dir) if include_users else None
    client = await connect(uri, role="target")
    try:
        if include_users:
            await require_users(client, uri, "target")
        # A view holds no documents of its own: it is never "not empty".
        existing = await _existing_counts(
            client, [target for target, dumped in plan if dumped.kind != KIND_VIEW]
        )
        busy = [f"{t} ({n} documents)" for t, n in existing.items() if n]
        if busy and not (drop or force or dry_run):
            raise not_empty_error(busy)
        result = RestoreResult(dry_run=dry_run)
        if dry_run:
            for target, dumped in plan:
                count = existing.get(target, 0)
                if drop and target in existing:
                    action = "drop and restore"
                elif count:
                    action = "merge" if force else REFUSED
                else:
                    action = "create" if target not in existing else "restore into empty"
                documents = count_documents(dumped.data_path) if dumped.data_path else 0
                result.collections.append(
                    CollectionRestoreResult(
                        namespace=target,
                        source_namespace=dumped.namespace,
                        documents=documents,
                        indexes=sum(1 for ix in dumped.indexes if list(ix["key"]) != ["_id"]),
                        bytes=dumped.size_bytes,
                        action=action,
                    )
                )
            if auth is not None:
                counted = count_dumped(auth)
                result.users, result.roles = counted.users, counted.roles
            return result

        started = time.perf_counter()
        items = [
            CollectionRestoreResult(namespace=target, source_namespace=dumped.namespace)
            for target, dumped in plan
        ]
        tasks: dict[int, TaskID] = {}
        if progress is not None:
            # Every row from the start, in plan order (a gzip file's count is not known); a
            # row's clock starts when its collection does.
            for index, (item, (_, dumped)) in enumerate(zip(items, plan, strict=True)):
                total = count_bson_file(dumped.data_path)[0] if dumped.data_path else 0
                tasks[index] = progress.add_task(
                    item.namespace, total=total if total >= 0 else None, bytes=0, start=False
                )

        # Collections at once overlap one another's reading and inserting: one batch in flight
        # each (mongorestore's one insertion worker per collection), so N collections keep N
        # batches at the server rather than 2N.
        in_flight = IN_FLIGHT_BATCHES if parallel == 1 else 1

        async def restore_one(index: int) -> CollectionRestoreResult:
            target, dumped = plan[index]
            item = items[index]
            db_name, coll_name = split_namespace(target)
            db = client.get_database(db_name, codec_options=RAW_CODEC)
            if drop:
                await db.drop_collection(coll_name)
            await restore_collection(
                db,
                coll_name,
                dumped,
                item,
                progress=progress,
                task=tasks.get(index),
                in_flight_batches=in_flight,
            )
            return item

        result.collections = await each_collection(
            range(len(plan)),
            restore_one,
            parallel=parallel,
            name=lambda index: plan[index][0],
            verb="restore",
        )
        if auth is not None:
            restored = await restore_users(client, auth, auth.db, drop=drop)
            result.users, result.roles = restored.users, restored.roles
        result.seconds = time.perf_counter() - started
        if change_file is not None:
            entries = read_change_entries(change_file)
            result.oplog = await replay(OplogApplier(client, mapper.map), entries, str(change_file))
        return result
    finally:
        await client.close()
