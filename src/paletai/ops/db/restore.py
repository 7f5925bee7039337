"""`paletai db restore`: load a dump (ours or stock mongodump's) into a database."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError, CollectionInvalid, OperationFailure
from rich.progress import Progress

from paletai.ops.db.common import (
    RAW_CODEC,
    RawCollection,
    RawDatabase,
    connect,
    create_indexes,
)
from paletai.ops.db.dumpfmt import DumpedCollection, count_bson_file, read_dump, read_raw_documents
from paletai.ops.errors import OpsError
from paletai.ops.results import DbRestoreResult

MAX_BATCH_DOCS = 1000
MAX_BATCH_BYTES = 16 * 1024 * 1024
IN_FLIGHT_BATCHES = 2
DUPLICATE_KEY = 11000


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


@dataclass
class RestoreResult:
    collections: list[CollectionRestoreResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.errors == 0 for c in self.collections)

    def total(self, attr: str) -> int:
        return sum(int(getattr(c, attr)) for c in self.collections)

    def to_result(self) -> DbRestoreResult:
        return DbRestoreResult.model_validate({**asdict(self), "ok": self.ok})


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """mongorestore namespace patterns: `*` and `$name$` match any run of characters."""
    parts = re.split(r"(\*|\$[A-Za-z_][A-Za-z0-9_]*\$)", pattern)
    regex = "".join(
        "(.*)"
        if p == "*" or (p.startswith("$") and p.endswith("$") and len(p) > 1)
        else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{regex}$")


class NamespaceMapper:
    """--ns-include and --ns-from/--ns-to, as mongorestore's --nsInclude/--nsFrom/--nsTo."""

    def __init__(
        self,
        include: Sequence[str] = (),
        ns_from: Sequence[str] = (),
        ns_to: Sequence[str] = (),
    ) -> None:
        if len(ns_from) != len(ns_to):
            raise OpsError("--ns-from and --ns-to must be given in pairs")
        self.include = [_pattern_regex(p) for p in include]
        self.renames: list[tuple[re.Pattern[str], list[str]]] = []
        for src, dst in zip(ns_from, ns_to, strict=True):
            regex = _pattern_regex(src)
            holes = re.split(r"\*|\$[A-Za-z_][A-Za-z0-9_]*\$", dst)
            if len(holes) - 1 != regex.groups:
                raise OpsError(f"--ns-to {dst!r} must have as many wildcards as --ns-from {src!r}")
            self.renames.append((regex, holes))

    def map(self, namespace: str) -> str | None:
        """The target namespace, or None when the namespace is not included."""
        if self.include and not any(p.match(namespace) for p in self.include):
            return None
        for regex, holes in self.renames:
            match = regex.match(namespace)
            if match:
                out = holes[0]
                for group, tail in zip(match.groups(), holes[1:], strict=True):
                    out += group + tail
                return out
        return namespace


def split_namespace(namespace: str) -> tuple[str, str]:
    db, sep, coll = namespace.partition(".")
    if not sep or not db or not coll:
        raise OpsError(f"namespace {namespace!r} is not <database>.<collection>")
    return db, coll


async def _insert_batch(
    coll: RawCollection, batch: list[RawBSONDocument], result: CollectionRestoreResult
) -> None:
    try:
        outcome = await coll.insert_many(batch, ordered=False)
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


async def _ensure_collection(db: RawDatabase, name: str, options: dict[str, Any]) -> None:
    try:
        await db.create_collection(name, **options)
    except CollectionInvalid:
        pass  # already there: --force merges into it
    except OperationFailure as exc:
        if exc.code != 48:  # NamespaceExists
            raise


async def restore_collection(
    db: RawDatabase,
    target_name: str,
    dumped: DumpedCollection,
    result: CollectionRestoreResult,
    *,
    progress: Progress | None = None,
) -> None:
    """Insert a dumped collection's documents in unordered batches, then build its indexes."""
    coll = db.get_collection(target_name, codec_options=RAW_CODEC)
    await _ensure_collection(db, target_name, dumped.options)
    total = count_bson_file(dumped.data_path)[0] if dumped.data_path else 0
    task = (
        progress.add_task(result.namespace, total=total if total >= 0 else None, bytes=0)
        if progress
        else None
    )
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
        if len(in_flight) >= IN_FLIGHT_BATCHES:
            await in_flight.pop(0)
        if progress is not None and task is not None:
            progress.update(task, completed=result.documents, bytes=result.bytes)

    try:
        if dumped.data_path is not None:
            for doc in read_raw_documents(dumped.data_path):
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
    result.indexes = await create_indexes(coll, dumped.indexes)
    result.seconds = time.perf_counter() - started
    if progress is not None and task is not None:
        done = result.documents
        progress.update(task, completed=done, total=done, bytes=result.bytes)


async def restore(
    uri: str,
    dump_dir: Path,
    *,
    drop: bool = False,
    force: bool = False,
    mapper: NamespaceMapper | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore every (included) collection of a dump; refuses non-empty targets unless asked."""
    mapper = mapper or NamespaceMapper()
    plan: list[tuple[str, DumpedCollection]] = []
    for dumped in read_dump(dump_dir):
        target = mapper.map(dumped.namespace)
        if target is not None:
            plan.append((target, dumped))
    if not plan:
        raise OpsError(f"no collection of the dump in {dump_dir} matches the namespace filter")
    client = await connect(uri, role="target")
    try:
        if not drop:
            busy = []
            for target, _ in plan:
                db_name, coll_name = split_namespace(target)
                count = await client[db_name][coll_name].estimated_document_count()
                if count:
                    busy.append(f"{target} ({count} documents)")
            if busy and not force:
                raise OpsError(
                    "the target is not empty: "
                    + ", ".join(busy)
                    + ". Use --drop to replace these collections, or --force to merge into them "
                    "(existing _ids are kept and counted as duplicates)."
                )
        result = RestoreResult()
        started = time.perf_counter()
        for target, dumped in plan:
            db_name, coll_name = split_namespace(target)
            db = client.get_database(db_name, codec_options=RAW_CODEC)
            if drop:
                await db.drop_collection(coll_name)
            item = CollectionRestoreResult(namespace=target, source_namespace=dumped.namespace)
            result.collections.append(item)
            await restore_collection(db, coll_name, dumped, item, progress=progress)
        result.seconds = time.perf_counter() - started
        return result
    finally:
        await client.close()
