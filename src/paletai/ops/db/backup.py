"""`paletai db backup`: a dump in stock mongodump's directory layout, documents as raw BSON."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bson import json_util
from bson.errors import BSONError
from pymongo.errors import OperationFailure
from rich.progress import Progress, TaskID

import paletai
from paletai.ops.db.common import (
    RAW_CODEC,
    RawDatabase,
    collection_info,
    collection_uuid_hex,
    connect,
    database_from_uri,
    index_specs,
    require_collections,
)
from paletai.ops.db.dumpfmt import (
    BSON_SUFFIX,
    METADATA_SUFFIX,
    PRELUDE,
    ROLES_FILE,
    USERS_FILE,
    FileOpener,
    encode_index_for_dump,
    metadata_json,
    open_write,
    prelude_json,
)
from paletai.ops.db.kinds import KIND_COLLECTION, KIND_VIEW, CollectionSpec, collection_specs
from paletai.ops.db.namespaces import check_patterns
from paletai.ops.db.oplog import ChangeRecorder, write_change_file
from paletai.ops.db.parallel import DEFAULT_PARALLEL, check_parallel, each_collection
from paletai.ops.db.users import dump_users, read_users, require_users
from paletai.ops.errors import OpsError
from paletai.ops.results import ConsistentCapture, DbBackupResult

FLUSH_BYTES = 1024 * 1024
QUERY_EXAMPLE = """--query '{"created_at": {"$gte": {"$date": "2024-01-01T00:00:00Z"}}}'"""


@dataclass
class CollectionDumpResult:
    name: str
    documents: int
    bytes: int
    seconds: float
    path: str | None = None  # the .bson file (written, or that would be with --dry-run)
    kind: str = "collection"


@dataclass
class BackupResult:
    database: str
    directory: str
    collections: list[CollectionDumpResult] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    query: str | None = None
    collection: str | None = None  # with --collection
    ns_exclude: list[str] | None = None  # with --ns-exclude
    users: int | None = None  # with --include-users
    roles: int | None = None
    archive: str | None = None
    consistent: ConsistentCapture | None = None

    @property
    def documents(self) -> int:
        return sum(c.documents for c in self.collections)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.collections)

    def to_result(self) -> DbBackupResult:
        return DbBackupResult.model_validate(
            {**asdict(self), "documents": self.documents, "bytes": self.bytes}
        )


def parse_query(text: str) -> dict[str, Any]:
    """A --query filter in canonical or relaxed Extended JSON v2 (as mongodump's --query)."""
    try:
        value = json_util.loads(text)
    except (ValueError, TypeError, BSONError) as exc:
        raise OpsError(
            f"--query is not valid Extended JSON ({exc}); give a filter document, e.g. "
            + QUERY_EXAMPLE
        ) from exc
    if not isinstance(value, Mapping):
        raise OpsError(
            f"--query must be a filter document ({{...}}), not {type(value).__name__}; e.g. "
            + QUERY_EXAMPLE
        )
    return dict(value)


def data_path(db_dir: Path, name: str, *, compress: bool) -> Path:
    return db_dir / f"{name}{BSON_SUFFIX}{'.gz' if compress else ''}"


async def dump_collection(
    db: RawDatabase,
    name: str,
    db_dir: Path,
    *,
    compress: bool,
    progress: Progress | None = None,
    task: TaskID | None = None,
    query: Mapping[str, Any] | None = None,
    open_out: FileOpener = open_write,
    spec: CollectionSpec | None = None,
) -> CollectionDumpResult:
    """Write <name>.metadata.json then <name>.bson (raw documents back to back), each through
    `open_out` (files by default; blobs for `--to-blob`); with `query`, only the documents it
    matches (the metadata is the whole collection's).

    As stock mongodump: a view gets its metadata only (type "view", viewOn/pipeline); a
    time-series collection its metadata (type "timeseries") and its buckets, as
    system.buckets.<name>.bson. `spec` is the collection's listCollections definition."""
    spec = spec or CollectionSpec(name)
    coll = db.get_collection(name, codec_options=RAW_CODEC)
    info = await collection_info(db, name)
    specs = [] if spec.kind == KIND_VIEW else await index_specs(coll)
    meta = metadata_json(
        collection=name,
        options=dict(spec.options),
        indexes=[encode_index_for_dump(ix) for ix in specs],
        uuid_hex=collection_uuid_hex(info),
        kind=spec.kind,
    )
    with open_out(db_dir / f"{name}{METADATA_SUFFIX}", compress=compress) as out:
        out.write(meta.encode())
    data_name = spec.data_collection
    if data_name is None:
        if progress is not None and task is not None:
            progress.update(task, completed=0, total=0)
        return CollectionDumpResult(name, 0, 0, 0.0, None, kind=spec.kind)
    coll = db.get_collection(data_name, codec_options=RAW_CODEC)

    if progress is not None and task is None:
        total = await coll.estimated_document_count()
        task = progress.add_task(name, total=total or None, bytes=0)
    if progress is not None and task is not None:
        progress.start_task(task)  # its clock (docs/s, elapsed) runs from here, not from queued
    started = time.perf_counter()
    documents = 0
    written = 0
    chunk: list[bytes] = []
    chunk_bytes = 0
    chunk_docs = 0
    with open_out(db_dir / f"{data_name}{BSON_SUFFIX}", compress=compress) as out:
        # Natural order, as mongodump: a sort would cost the server a pass for nothing.
        cursor = coll.find(dict(query or {}), batch_size=1000)
        async for doc in cursor:
            raw = bytes(doc.raw)
            chunk.append(raw)
            chunk_bytes += len(raw)
            chunk_docs += 1
            if chunk_bytes >= FLUSH_BYTES:
                out.write(b"".join(chunk))
                documents += chunk_docs
                written += chunk_bytes
                chunk, chunk_bytes, chunk_docs = [], 0, 0
                if progress is not None and task is not None:
                    progress.update(task, completed=documents, bytes=written)
        if chunk:
            out.write(b"".join(chunk))
            documents += chunk_docs
            written += chunk_bytes
    if progress is not None and task is not None:
        progress.update(task, completed=documents, total=documents, bytes=written)
    path = str(data_path(db_dir, data_name, compress=compress))
    seconds = time.perf_counter() - started
    return CollectionDumpResult(name, documents, written, seconds, path, kind=spec.kind)


def _would_write(db_dir: Path, spec: CollectionSpec, compress: bool) -> str | None:
    data_name = spec.data_collection
    return None if data_name is None else str(data_path(db_dir, data_name, compress=compress))


def _prepare(out_dir: Path, db_name: str, server_version: str) -> Path:
    db_dir = out_dir / db_name
    db_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PRELUDE).write_text(prelude_json(server_version, f"paletai {paletai.__version__}"))
    return db_dir


def choose_collections(
    names: Sequence[str], db_name: str, *, collection: str | None, ns_exclude: Sequence[str]
) -> list[str]:
    """The collections --collection and --ns-exclude leave; OpsError when that is none."""
    excludes = check_patterns("--ns-exclude", ns_exclude)
    if collection is not None:
        if collection not in names:
            raise OpsError(
                f"--collection {collection!r}: database {db_name!r} has no such collection; "
                f"collections there: {', '.join(names)}"
            )
        names = [collection]
    chosen = [n for n in names if not any(p.match(f"{db_name}.{n}") for p in excludes)]
    if not chosen:
        raise OpsError(
            f"--ns-exclude {' '.join(ns_exclude)} leaves no collection of {db_name!r} to back "
            f"up (collections: {', '.join(names)})"
        )
    return chosen


async def backup(
    uri: str,
    out_dir: Path,
    *,
    db_name: str | None = None,
    compress: bool = False,
    progress: Progress | None = None,
    parallel: int = DEFAULT_PARALLEL,
    ns_exclude: Sequence[str] = (),
    collection: str | None = None,
    query: str | None = None,
    dry_run: bool = False,
    include_users: bool = False,
    consistent: bool = False,
    after_dump: Callable[[], Awaitable[None]] | None = None,
) -> BackupResult:
    """Dump the collections of one database into `out_dir/<db>/`, `parallel` at a time.

    `collection` keeps one, `ns_exclude` drops `db.coll` patterns, `query` (Extended JSON,
    needs `collection`) filters its documents; `dry_run` counts what would be written and
    writes nothing; `include_users` adds the database's users and roles (mongodump's
    --dumpDbUsersAndRoles layout). `consistent`: also record the changes made during the dump
    (oplog.py), so the restore is at one instant."""
    check_parallel(parallel)
    if query is not None and collection is None:
        raise OpsError(
            "--query needs --collection: a filter applies to one collection (as mongodump's "
            "--query); add --collection NAME"
        )
    if consistent and query is not None:
        raise OpsError("--consistent records whole documents: it cannot be combined with --query")
    query_filter = parse_query(query) if query is not None else None
    name = database_from_uri(uri, db_name)
    client = await connect(uri, role="source")
    recorder: ChangeRecorder | None = None
    try:
        db = client.get_database(name, codec_options=RAW_CODEC)
        await require_collections(client, db, uri, "source")
        # Every kind listCollections reports (views and time-series too), not only collections.
        kinds = await collection_specs(db)
        names = choose_collections(list(kinds), name, collection=collection, ns_exclude=ns_exclude)
        if query_filter is not None and kinds[names[0]].kind != KIND_COLLECTION:
            raise OpsError(
                f"--query filters the documents of a collection; {kinds[names[0]].describe()} "
                "is not one (back it up whole: leave out --query)"
            )
        if include_users:
            await require_users(client, uri, "source")
        totals: dict[str, int] = {}
        for coll_name in names:
            data_name = kinds[coll_name].data_collection
            if data_name is None:  # a view: its definition only
                totals[coll_name] = 0
                continue
            coll = db.get_collection(data_name)
            if query_filter is None:
                totals[coll_name] = await coll.estimated_document_count()
                continue
            try:
                totals[coll_name] = await coll.count_documents(query_filter)
            except OperationFailure as exc:
                reason = (exc.details or {}).get("errmsg") or str(exc)
                raise OpsError(
                    f"--query: the source refused the filter ({reason}); "
                    "check its operators, e.g. " + QUERY_EXAMPLE
                ) from exc
        result = BackupResult(
            database=name,
            directory=str(out_dir),
            dry_run=dry_run,
            query=query,
            collection=collection,
            ns_exclude=list(ns_exclude) or None,
        )
        db_dir = out_dir / name
        if dry_run:
            result.collections = [
                CollectionDumpResult(
                    n, totals[n], 0, 0.0, _would_write(db_dir, kinds[n], compress), kinds[n].kind
                )
                for n in names
            ]
            if include_users:
                found = await read_users(client, name, uri)
                result.users, result.roles = len(found[USERS_FILE]), len(found[ROLES_FILE])
            return result

        build = await client.admin.command("buildInfo")
        db_dir = _prepare(out_dir, name, str(build.get("version", "unknown")))
        # Every row from the start, in name order (the display does not move as they finish);
        # a row's clock starts when its collection does.
        tasks: dict[str, TaskID] = {}
        if progress is not None:
            for n in names:
                tasks[n] = progress.add_task(n, total=totals[n] or None, bytes=0, start=False)
        started = time.perf_counter()
        if consistent:
            recorder = ChangeRecorder(db, names)
            await recorder.open()  # before the first read

        async def dump_one(coll_name: str) -> CollectionDumpResult:
            return await dump_collection(
                db,
                coll_name,
                db_dir,
                compress=compress,
                progress=progress,
                task=tasks.get(coll_name),
                query=query_filter,
                spec=kinds[coll_name],
            )

        result.collections = await each_collection(
            names, dump_one, parallel=parallel, name=lambda n: f"{name}.{n}", verb="backup"
        )
        if include_users:
            dumped = await dump_users(client, name, db_dir, compress=compress, uri=uri)
            result.users, result.roles = dumped.users, dumped.roles
        if recorder is not None:
            if after_dump is not None:
                await after_dump()
            capture = await recorder.finish()
            write_change_file(out_dir, capture, compress=compress)
            result.consistent = capture.summary()
        result.seconds = time.perf_counter() - started
        return result
    finally:
        if recorder is not None:
            await recorder.close()
        await client.close()
