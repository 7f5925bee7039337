"""`paletai db verify`: prove two databases identical, document by document, in bounded memory.

Both sides are streamed sorted by `_id` and merged. The merge needs both servers to sort `_id`s
the way MongoDB specifies (see `bson_sort_key`); when a side's order disagrees (a server that sorts
mixed types differently), that collection falls back to comparing digests keyed by `_id`, which
costs memory proportional to the number of documents (about 60 bytes each) but stays exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, cast

from bson import json_util
from bson.raw_bson import RawBSONDocument

from paletai.ops.db.common import (
    RAW_CODEC,
    IndexShape,
    RawCollection,
    RawDatabase,
    bson_sort_key,
    connect,
    database_from_uri,
    id_bytes,
    index_shape,
    index_specs,
    is_id_index,
    leading_id,
    require_collections,
)
from paletai.ops.db.kinds import (
    KIND_VIEW,
    CollectionSpec,
    collection_specs,
    compare_index_options,
    compare_options,
)
from paletai.ops.results import DbVerifyResult

SAMPLE_LIMIT = 20
PREFETCH_BATCHES = 4
BATCH_SIZE = 1000
PARALLEL_COLLECTIONS = 3


def describe_id(value: Any) -> str:
    return json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)


@dataclass
class IdList:
    """A count and the first few `_id`s of one kind of difference."""

    count: int = 0
    sample: list[str] = field(default_factory=list)

    def add(self, value: Any) -> None:
        self.count += 1
        if len(self.sample) < SAMPLE_LIMIT:
            self.sample.append(describe_id(value))


@dataclass
class CollectionReport:
    name: str
    source_count: int = 0
    target_count: int = 0
    in_source: bool = True
    in_target: bool = True
    missing_in_target: IdList = field(default_factory=IdList)
    extra_in_target: IdList = field(default_factory=IdList)
    different: IdList = field(default_factory=IdList)
    indexes_missing_in_target: list[str] = field(default_factory=list)
    indexes_extra_in_target: list[str] = field(default_factory=list)
    merge: str = "sorted"  # or "hashed" when a server's _id order disagreed
    kind: str = "collection"  # a view is compared by its definition only
    option_differences: list[str] = field(default_factory=list)
    index_option_differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return (
            self.in_source == self.in_target
            and self.source_count == self.target_count
            and not self.missing_in_target.count
            and not self.extra_in_target.count
            and not self.different.count
            and not self.indexes_missing_in_target
            and not self.indexes_extra_in_target
            and not self.option_differences
            and not self.index_option_differences
        )


@dataclass
class VerifyReport:
    source_db: str
    target_db: str
    collections: list[CollectionReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.collections)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["identical"] = self.identical
        for item, coll in zip(data["collections"], self.collections, strict=True):
            item["identical"] = coll.identical
        return data

    def to_result(self) -> DbVerifyResult:
        return DbVerifyResult.model_validate(self.as_dict())


class OrderDisagrees(Exception):
    """A server returned `_id`s out of MongoDB's order; fall back to the hashed comparison."""


class DiffSink(Protocol):
    """Receives the `_id`s that differ between two collections."""

    def missing(self, value: Any) -> None: ...
    def extra(self, value: Any) -> None: ...
    def different(self, value: Any) -> None: ...
    def seen(self, source: int, target: int) -> None: ...


class ReportSink:
    """Counts and samples into the report; with `ids`, also every differing `_id` (cutover)."""

    def __init__(self, report: CollectionReport, ids: list[Any] | None = None) -> None:
        self.report = report
        self.ids = ids

    def missing(self, value: Any) -> None:
        self.report.missing_in_target.add(value)
        self._keep(value)

    def extra(self, value: Any) -> None:
        self.report.extra_in_target.add(value)
        self._keep(value)

    def different(self, value: Any) -> None:
        self.report.different.add(value)
        self._keep(value)

    def _keep(self, value: Any) -> None:
        if self.ids is not None:
            self.ids.append(value)

    def seen(self, source: int, target: int) -> None:
        self.report.source_count, self.report.target_count = source, target


async def _raw_batches(coll: RawCollection, *, ids_only: bool) -> AsyncGenerator[bytes, None]:
    """Raw server batches (documents back to back) sorted by _id, fetched ahead in a task so
    both servers work at the same time."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(PREFETCH_BATCHES)

    async def produce() -> None:
        try:
            projection = {"_id": 1} if ids_only else None
            cursor = coll.find_raw_batches({}, projection, batch_size=BATCH_SIZE).sort("_id", 1)
            async for data in cursor:
                chunk = cast(bytes, data)  # a raw batch cursor yields the batch's bytes
                if chunk:
                    await queue.put(chunk)
            await queue.put(None)
        except asyncio.CancelledError:
            raise  # the consumer stopped reading (and cancelled us): a put could wait forever
        except BaseException as exc:  # handed to the consumer, which re-raises it
            await queue.put(exc)

    task = asyncio.create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _offsets(data: bytes) -> list[int]:
    """Start offsets of the documents in a raw batch."""
    offsets = []
    pos, end = 0, len(data)
    while pos < end:
        offsets.append(pos)
        pos += int.from_bytes(data[pos : pos + 4], "little")
    return offsets


class _SortedSide:
    """One side of the merge: raw batches in _id order, consumed a document at a time, or a
    whole batch at once when both sides hold byte-identical batches (the common case)."""

    def __init__(self, coll: RawCollection, *, ids_only: bool) -> None:
        self._batches = _raw_batches(coll, ids_only=ids_only)
        self.data = b""
        self.offsets: list[int] = []
        self.pos = 0
        self.count = 0
        self.last: tuple[Any, ...] | None = None
        self.exhausted = False

    async def load(self) -> None:
        self.data = await anext(self._batches, b"")
        self.offsets = _offsets(self.data)
        self.pos = 0
        self.exhausted = not self.data

    def _doc(self, index: int) -> RawBSONDocument:
        start = self.offsets[index]
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else len(self.data)
        return RawBSONDocument(self.data[start:end], RAW_CODEC)

    def head(self) -> tuple[tuple[Any, ...], Any, RawBSONDocument]:
        """(sort key, _id, document) of the next document; OrderDisagrees if out of order."""
        doc = self._doc(self.pos)
        value = leading_id(doc)
        key = bson_sort_key(value)
        if self.last is not None and key <= self.last:
            raise OrderDisagrees
        return key, value, doc

    async def advance(self, key: tuple[Any, ...]) -> None:
        self.last = key
        self.pos += 1
        self.count += 1
        if self.pos >= len(self.offsets):
            await self.load()

    async def skip_batch(self) -> None:
        """Consume the whole (identical) batch; its last document becomes the order mark."""
        first = self.head()[0]
        self.pos = len(self.offsets) - 1
        last = bson_sort_key(leading_id(self._doc(self.pos)))
        # Inside an identical batch the order cannot hide a difference; across batches it can.
        self.last = max(first, last)
        self.count += len(self.offsets)
        await self.load()

    async def close(self) -> None:
        await self._batches.aclose()


async def merge_compare(
    source: RawCollection, target: RawCollection, sink: DiffSink, *, ids_only: bool = False
) -> None:
    """Stream both sides in _id order and hand every difference to `sink`.

    Raises OrderDisagrees (before or after some differences were reported) when a server's
    order is not MongoDB's; callers then start over with `hashed_compare`.
    """
    src = _SortedSide(source, ids_only=ids_only)
    tgt = _SortedSide(target, ids_only=ids_only)
    try:
        # Both loads end before anything else happens: a side closed while its own load still
        # runs would fail ("aclose(): asynchronous generator is already running") and hide the
        # error of the other (a server timing out), and leave its read-ahead task behind.
        loaded = await asyncio.gather(src.load(), tgt.load(), return_exceptions=True)
        for outcome in loaded:
            if isinstance(outcome, BaseException):
                raise outcome
        while not (src.exhausted and tgt.exhausted):
            if not src.exhausted and src.pos == 0 and tgt.pos == 0 and src.data == tgt.data:
                await src.skip_batch()
                await tgt.skip_batch()
                continue
            a = None if src.exhausted else src.head()
            b = None if tgt.exhausted else tgt.head()
            if b is None or (a is not None and a[0] < b[0]):
                assert a is not None
                sink.missing(a[1])
                await src.advance(a[0])
            elif a is None or b[0] < a[0]:
                sink.extra(b[1])
                await tgt.advance(b[0])
            else:
                if not ids_only and a[2].raw != b[2].raw:
                    sink.different(a[1])
                await src.advance(a[0])
                await tgt.advance(b[0])
        sink.seen(src.count, tgt.count)
    finally:
        await src.close()
        await tgt.close()


def _digest(doc: RawBSONDocument, ids_only: bool) -> bytes:
    return b"" if ids_only else hashlib.blake2b(doc.raw, digest_size=16).digest()


async def hashed_compare(
    source: RawCollection, target: RawCollection, sink: DiffSink, *, ids_only: bool = False
) -> None:
    """Exact comparison that does not depend on server sort order: _id -> digest of the source."""
    projection = {"_id": 1} if ids_only else None
    digests: dict[bytes, bytes] = {}
    n_src = n_tgt = 0
    async for doc in source.find({}, projection, batch_size=BATCH_SIZE):
        digests[id_bytes(doc["_id"])] = _digest(doc, ids_only)
        n_src += 1
    async for doc in target.find({}, projection, batch_size=BATCH_SIZE):
        n_tgt += 1
        entry = digests.pop(id_bytes(doc["_id"]), None)
        if entry is None:
            sink.extra(doc["_id"])
        elif entry != _digest(doc, ids_only):
            sink.different(doc["_id"])
    for key in digests:
        sink.missing(RawBSONDocument(key, RAW_CODEC)["_id"])
    sink.seen(n_src, n_tgt)


async def compare_collection(
    source_db: RawDatabase,
    target_db: RawDatabase,
    name: str,
    *,
    in_source: bool,
    in_target: bool,
    ids: list[Any] | None = None,
) -> CollectionReport:
    source = source_db.get_collection(name, codec_options=RAW_CODEC)
    target = target_db.get_collection(name, codec_options=RAW_CODEC)
    # Counts are those of the scans themselves: one pass, and consistent with the comparison.
    report = CollectionReport(name=name, in_source=in_source, in_target=in_target)
    try:
        await merge_compare(source, target, ReportSink(report, ids))
    except OrderDisagrees:
        report = CollectionReport(
            name=name, in_source=in_source, in_target=in_target, merge="hashed"
        )
        if ids is not None:
            ids.clear()
        await hashed_compare(source, target, ReportSink(report, ids))
    src_specs, tgt_specs = await asyncio.gather(index_specs(source), index_specs(target))
    src_ix, tgt_ix = _shapes(src_specs), _shapes(tgt_specs)
    report.indexes_missing_in_target = sorted(s.describe() for s in src_ix - tgt_ix)
    report.indexes_extra_in_target = sorted(s.describe() for s in tgt_ix - src_ix)
    report.index_option_differences = compare_index_options(src_specs, tgt_specs)
    return report


async def index_shapes(coll: RawCollection) -> set[IndexShape]:
    return _shapes(await index_specs(coll))


def _shapes(specs: list[dict[str, Any]]) -> set[IndexShape]:
    return {index_shape(spec) for spec in specs if not is_id_index(spec)}


async def verify_databases(
    source_db: RawDatabase,
    target_db: RawDatabase,
    *,
    differing: dict[str, list[Any]] | None = None,
) -> VerifyReport:
    """Compare both databases; with `differing`, every `_id` that differs goes there too (per
    collection), not only the report's sample."""
    report = VerifyReport(source_db=source_db.name, target_db=target_db.name)
    started = time.perf_counter()
    # Every kind: views by their definition, time-series by definition and documents.
    src_specs, tgt_specs = await asyncio.gather(
        collection_specs(source_db), collection_specs(target_db)
    )
    src_names, tgt_names = set(src_specs), set(tgt_specs)
    # A few collections at a time: small ones finish while the big one streams.
    limit = asyncio.Semaphore(PARALLEL_COLLECTIONS)

    async def one(name: str) -> CollectionReport:
        src, tgt = src_specs.get(name), tgt_specs.get(name)
        kind = (src or tgt or CollectionSpec(name)).kind
        if kind == KIND_VIEW:
            item = CollectionReport(name=name, in_source=bool(src), in_target=bool(tgt))
            item.merge = "definition"
        else:
            async with limit:
                item = await compare_collection(
                    source_db,
                    target_db,
                    name,
                    in_source=name in src_names,
                    in_target=name in tgt_names,
                    ids=None if differing is None else differing.setdefault(name, []),
                )
        item.kind = kind
        if src is not None and tgt is not None:
            item.option_differences = compare_options(src, tgt)
        return item

    names = sorted(set(src_names) | set(tgt_names))
    report.collections = list(await asyncio.gather(*(one(name) for name in names)))
    report.seconds = time.perf_counter() - started
    return report


async def verify(
    source_uri: str,
    target_uri: str,
    *,
    db_name: str | None = None,
    target_db_name: str | None = None,
) -> VerifyReport:
    src_name = database_from_uri(source_uri, db_name)
    tgt_name = database_from_uri(target_uri, target_db_name or db_name)
    source = await connect(source_uri, role="source")
    try:
        target = await connect(target_uri, role="target")
        try:
            source_db = source.get_database(src_name, codec_options=RAW_CODEC)
            await require_collections(source, source_db, source_uri, "source")
            return await verify_databases(
                source_db, target.get_database(tgt_name, codec_options=RAW_CODEC)
            )
        finally:
            await target.close()
    finally:
        await source.close()
