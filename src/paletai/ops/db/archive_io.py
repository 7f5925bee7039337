"""`db backup --archive` and `db restore --archive`: a database to and from one archive stream.

Backup writes what `mongodump --archive` writes: every collection's metadata in the prelude, then
each collection's documents (raw, exactly the bytes the server returned) and its EOF with CRC,
then, with `--consistent`, the recorded changes as the `oplog` namespace. Restore streams the
archive into the target as it reads it (stdin works: nothing is spooled to disk): collections
are created from the prelude, documents inserted in unordered batches as they arrive (the
namespaces may be interleaved), indexes built at each namespace's end, and the oplog, held aside,
is replayed last with `--oplog-replay`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any

from bson import json_util
from bson.raw_bson import RawBSONDocument
from rich.progress import Progress

import paletai
from paletai.ops.db.archive import (
    OPLOG_COLLECTION,
    OPLOG_DB,
    ArchivedNamespace,
    ArchiveReader,
    ArchiveWriter,
)
from paletai.ops.db.backup import BackupResult, CollectionDumpResult
from paletai.ops.db.common import (
    RAW_CODEC,
    RawCollection,
    collection_info,
    collection_uuid_hex,
    connect,
    create_indexes,
    database_from_uri,
    index_specs,
    require_collections,
)
from paletai.ops.db.dumpfmt import encode_index_for_dump, metadata_json
from paletai.ops.db.kinds import (
    KIND_COLLECTION,
    KIND_TIMESERIES,
    KIND_VIEW,
    CollectionSpec,
    KindNotKept,
    collection_specs,
    ensure_collection,
)
from paletai.ops.db.namespaces import NamespaceMapper, split_namespace
from paletai.ops.db.oplog import (
    CHANGES_FILE,
    ChangeRecorder,
    OplogApplier,
    iter_entries,
    replay,
)
from paletai.ops.db.restore import (
    MAX_BATCH_BYTES,
    MAX_BATCH_DOCS,
    CollectionRestoreResult,
    RestoreResult,
    _existing_counts,
    _insert_batch,
    not_empty_error,
)
from paletai.ops.errors import OpsError

FLUSH_BYTES = 1024 * 1024
READ_AHEAD_DOCS = 2000


async def backup_to_archive(
    uri: str,
    out: IO[bytes],
    *,
    archive_name: str = "-",
    db_name: str | None = None,
    consistent: bool = False,
    progress: Progress | None = None,
    after_dump: Callable[[], Awaitable[None]] | None = None,
) -> BackupResult:
    """Dump one database into an archive stream (`out` is written, not closed)."""
    name = database_from_uri(uri, db_name)
    client = await connect(uri, role="source")
    recorder: ChangeRecorder | None = None
    try:
        db = client.get_database(name, codec_options=RAW_CODEC)
        build = await client.admin.command("buildInfo")
        names = await require_collections(client, db, uri, "source")
        # Views go in the prelude (definition only, as mongodump writes them); a time-series
        # collection has no place here that our restore reads: said, never left out quietly.
        specs = await collection_specs(db)
        series = [s.name for s in specs.values() if s.kind == KIND_TIMESERIES]
        if series:
            raise KindNotKept(
                f"--archive cannot hold the time-series collection(s) {', '.join(series)} of "
                f"{name!r}: back up to a directory (--out, without --archive)"
            )
        views = [s for s in specs.values() if s.kind == KIND_VIEW]
        if consistent:
            recorder = ChangeRecorder(db, names)
            await recorder.open()  # before the first read: the capture's start
        entries = []
        for coll_name in names:
            info = await collection_info(db, coll_name)
            coll = db.get_collection(coll_name, codec_options=RAW_CODEC)
            indexes = [encode_index_for_dump(spec) for spec in await index_specs(coll)]
            meta = metadata_json(
                collection=coll_name,
                options=dict(info.get("options") or {}),
                indexes=indexes,
                uuid_hex=collection_uuid_hex(info),
            )
            entries.append(ArchivedNamespace(name, coll_name, meta, "collection"))
        for view in views:
            meta = metadata_json(
                collection=view.name,
                options=dict(view.options),
                indexes=[],
                uuid_hex=collection_uuid_hex({}),
                kind=KIND_VIEW,
            )
            entries.append(ArchivedNamespace(name, view.name, meta, KIND_VIEW))
        # With --consistent the changes go last, as the "oplog" namespace (mongodump's place
        # for it; without server timestamps its entries have no `ts`, and only ours replays it).
        writer = ArchiveWriter(out)
        oplog_entry = ArchivedNamespace(OPLOG_DB, OPLOG_COLLECTION, "", "")
        writer.write_prelude(
            [*entries, oplog_entry] if consistent else entries,
            server_version=str(build.get("version") or "0.0.0"),
            tool_version=f"paletai {paletai.__version__}",
        )
        result = BackupResult(database=name, directory="", archive=archive_name)
        started = time.perf_counter()
        for coll_name in names:
            coll = db.get_collection(coll_name, codec_options=RAW_CODEC)
            result.collections.append(await _dump_into(coll, name, writer, progress))
        for view in views:
            # No documents; an empty block closes it, as for an empty collection (readers
            # expect every prelude namespace to end).
            writer.end_namespace(name, view.name)
            result.collections.append(CollectionDumpResult(view.name, 0, 0, 0.0, kind=KIND_VIEW))
        if recorder is not None:
            if after_dump is not None:
                await after_dump()
            capture = await recorder.finish()
            for raw in capture.entries:
                writer.write_documents(OPLOG_DB, OPLOG_COLLECTION, raw)
            writer.end_namespace(OPLOG_DB, OPLOG_COLLECTION)
            # In an archive the entries are always the "oplog" namespace, whatever the server.
            where = "the archive's oplog" + (" (no ts)" if capture.file == CHANGES_FILE else "")
            result.consistent = capture.summary().model_copy(update={"file": where})
        out.flush()
        result.seconds = time.perf_counter() - started
        return result
    finally:
        if recorder is not None:
            await recorder.close()
        await client.close()


async def _dump_into(
    coll: RawCollection, db_name: str, writer: ArchiveWriter, progress: Progress | None
) -> CollectionDumpResult:
    total = await coll.estimated_document_count()
    task = progress.add_task(coll.name, total=total or None, bytes=0) if progress else None
    started = time.perf_counter()
    documents = written = 0
    chunk: list[bytes] = []
    size = 0
    async for doc in coll.find({}, batch_size=1000):
        raw = bytes(doc.raw)
        chunk.append(raw)
        size += len(raw)
        if size >= FLUSH_BYTES:
            writer.write_documents(db_name, coll.name, b"".join(chunk))
            documents += len(chunk)
            written += size
            chunk, size = [], 0
            if progress is not None and task is not None:
                progress.update(task, completed=documents, bytes=written)
    if chunk:
        writer.write_documents(db_name, coll.name, b"".join(chunk))
        documents += len(chunk)
        written += size
    writer.end_namespace(db_name, coll.name)
    if progress is not None and task is not None:
        progress.update(task, completed=documents, total=documents, bytes=written)
    return CollectionDumpResult(coll.name, documents, written, time.perf_counter() - started)


# --- restore ----------------------------------------------------------------------------------


class _Loader:
    """One namespace being restored: its batches in flight and its result."""

    def __init__(self, coll: RawCollection, meta: dict[str, Any], result: CollectionRestoreResult):
        self.coll = coll
        self.indexes = [dict(ix) for ix in (meta.get("indexes") or [])]
        self.result = result
        self.batch: list[RawBSONDocument] = []
        self.batch_bytes = 0
        self.in_flight: list[asyncio.Task[None]] = []
        self.started = time.perf_counter()

    async def add(self, raw: bytes) -> None:
        if self.batch and (
            len(self.batch) >= MAX_BATCH_DOCS or self.batch_bytes + len(raw) > MAX_BATCH_BYTES
        ):
            await self.flush()
        self.batch.append(RawBSONDocument(raw, RAW_CODEC))
        self.batch_bytes += len(raw)
        self.result.documents += 1
        self.result.bytes += len(raw)

    async def flush(self) -> None:
        if self.batch:
            task = asyncio.create_task(_insert_batch(self.coll, self.batch, self.result))
            self.in_flight.append(task)
            self.batch, self.batch_bytes = [], 0
        if len(self.in_flight) >= 2:
            await self.in_flight.pop(0)

    async def end(self) -> None:
        await self.flush()
        while self.in_flight:
            await self.in_flight.pop(0)
        self.result.indexes = await create_indexes(self.coll, self.indexes)
        self.result.seconds = time.perf_counter() - self.started

    def cancel(self) -> None:
        for task in self.in_flight:
            task.cancel()


def _metadata(ns: ArchivedNamespace, source: str) -> dict[str, Any]:
    if not ns.metadata:
        return {}
    try:
        meta = json_util.loads(ns.metadata)
    except (ValueError, TypeError) as exc:
        raise OpsError(
            f"{source}: the metadata of {ns.namespace} is not Extended JSON ({exc})"
        ) from None
    return dict(meta) if isinstance(meta, dict) else {}


async def restore_from_archive(
    uri: str,
    stream: IO[bytes],
    *,
    source: str,
    drop: bool = False,
    force: bool = False,
    oplog_replay: bool = False,
    mapper: NamespaceMapper | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore an archive read from `stream` (a file or stdin), streaming."""
    mapper = mapper or NamespaceMapper()
    reader = ArchiveReader(stream, source)
    namespaces = await asyncio.to_thread(reader.read_prelude)
    oplogs = [ns for ns in namespaces if ns.db == OPLOG_DB]
    if oplog_replay and not oplogs:
        raise OpsError(
            f"--oplog-replay: {source} holds no oplog (it was not taken with mongodump --oplog "
            "or db backup --consistent): leave out --oplog-replay"
        )
    if oplogs and not oplog_replay:
        raise OpsError(
            f"{source} holds an oplog ({', '.join(ns.collection for ns in oplogs)}, from "
            "mongodump --oplog or db backup --consistent): add --oplog-replay to apply it "
            "after the collections (without it the restore would not be at one instant)"
        )
    plan: dict[str, tuple[str, ArchivedNamespace]] = {}
    for ns in namespaces:
        if ns.db == OPLOG_DB or ns.collection.startswith("$admin."):
            # mongodump --dumpDbUsersAndRoles' users, roles and version are not collections to
            # create (the demultiplexer reads and drops their documents).
            continue
        if ns.type == "timeseries":
            raise OpsError(
                f"{source}: {ns.namespace} is a time-series collection, which paletai does not "
                "restore from an archive; restore it with stock mongorestore"
            )
        target = mapper.map(ns.namespace)
        if target is not None:
            plan[ns.namespace] = (target, ns)
    if not plan:
        raise OpsError(f"no collection of the archive {source} matches the namespace filter")
    client = await connect(uri, role="target")
    loaders: dict[str, _Loader] = {}
    try:
        collections = [target for target, ns in plan.values() if ns.type != "view"]
        existing = await _existing_counts(client, collections)
        busy = [f"{t} ({n} documents)" for t, n in existing.items() if n]
        if busy and not (drop or force):
            raise not_empty_error(busy)
        result = RestoreResult()
        started = time.perf_counter()
        for source_ns, (target, ns) in plan.items():
            db_name, coll_name = split_namespace(target)
            db = client.get_database(db_name, codec_options=RAW_CODEC)
            meta = _metadata(ns, source)
            if drop:
                await db.drop_collection(coll_name)
            options = dict(meta.get("options") or {})
            spec = CollectionSpec(coll_name, ns.type or KIND_COLLECTION, options)
            item = CollectionRestoreResult(
                namespace=target, source_namespace=source_ns, kind=spec.kind
            )
            result.collections.append(item)
            try:
                await ensure_collection(db, spec)
            except KindNotKept as exc:
                item.problem = str(exc)  # named in the output; the command ends with exit 1
                if spec.kind != KIND_COLLECTION:
                    continue
            if spec.kind == KIND_VIEW:
                continue
            loaders[source_ns] = _Loader(db.get_collection(coll_name), meta, item)
        with tempfile.TemporaryFile() as oplog_file:
            await _demultiplex(reader, loaders, oplog_file, progress)
            result.seconds = time.perf_counter() - started
            if oplogs:
                oplog_file.seek(0)
                applier = OplogApplier(client, mapper.map)
                entries = iter_entries(_raw_documents(oplog_file))
                result.oplog = await replay(applier, entries, f"{source} (oplog)")
        return result
    finally:
        for loader in loaders.values():
            loader.cancel()
        await client.close()


async def _demultiplex(
    reader: ArchiveReader,
    loaders: dict[str, _Loader],
    oplog_file: IO[bytes],
    progress: Progress | None,
) -> None:
    documents = reader.documents()

    def read_ahead() -> list[tuple[ArchivedNamespace, bytes | None]]:
        items = []
        for item in documents:
            items.append(item)
            if len(items) >= READ_AHEAD_DOCS or item[1] is None:
                break
        return items

    task = progress.add_task("archive", total=None, bytes=0) if progress else None
    try:
        await _feed(read_ahead, loaders, oplog_file, progress, task)
    except BaseException:
        if progress is not None and task is not None:
            progress.remove_task(task)  # the error line alone, not a bar stopped half way
        raise


async def _feed(
    read_ahead: Callable[[], list[tuple[ArchivedNamespace, bytes | None]]],
    loaders: dict[str, _Loader],
    oplog_file: IO[bytes],
    progress: Progress | None,
    task: Any,
) -> None:
    done = 0
    nbytes = 0
    # The reads run in a thread: stdin may block while the inserts in flight go on.
    while items := await asyncio.to_thread(read_ahead):
        for ns, raw in items:
            if ns.db == OPLOG_DB:
                if raw is not None:
                    oplog_file.write(raw)
                continue
            loader = loaders.get(ns.namespace)
            if loader is None:
                continue  # excluded by --ns-include, or a view (no documents)
            if raw is None:
                await loader.end()
            else:
                await loader.add(raw)
                done += 1
                nbytes += len(raw)
        if progress is not None and task is not None:
            progress.update(task, completed=done, bytes=nbytes)


def _raw_documents(stream: IO[bytes]) -> Any:
    while head := stream.read(4):
        size = int.from_bytes(head, "little", signed=True)
        yield head + stream.read(size - 4)
