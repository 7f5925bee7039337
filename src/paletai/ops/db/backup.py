"""`paletai db backup`: a dump in stock mongodump's directory layout, documents as raw BSON."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.progress import Progress

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
    encode_index_for_dump,
    metadata_json,
    open_write,
    prelude_json,
)
from paletai.ops.results import DbBackupResult

FLUSH_BYTES = 1024 * 1024


@dataclass
class CollectionDumpResult:
    name: str
    documents: int
    bytes: int
    seconds: float


@dataclass
class BackupResult:
    database: str
    directory: str
    collections: list[CollectionDumpResult] = field(default_factory=list)
    seconds: float = 0.0

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


async def dump_collection(
    db: RawDatabase,
    name: str,
    db_dir: Path,
    *,
    compress: bool,
    progress: Progress | None = None,
) -> CollectionDumpResult:
    """Write <name>.metadata.json then <name>.bson (raw documents back to back)."""
    coll = db.get_collection(name, codec_options=RAW_CODEC)
    info = await collection_info(db, name)
    indexes = [encode_index_for_dump(spec) for spec in await index_specs(coll)]
    meta = metadata_json(
        collection=name,
        options=dict(info.get("options") or {}),
        indexes=indexes,
        uuid_hex=collection_uuid_hex(info),
    )
    with open_write(db_dir / f"{name}{METADATA_SUFFIX}", compress=compress) as out:
        out.write(meta.encode())

    total = await coll.estimated_document_count()
    task = progress.add_task(name, total=total or None, bytes=0) if progress else None
    started = time.perf_counter()
    documents = 0
    written = 0
    chunk: list[bytes] = []
    chunk_bytes = 0
    chunk_docs = 0
    with open_write(db_dir / f"{name}{BSON_SUFFIX}", compress=compress) as out:
        # Natural order, as mongodump: a sort would cost the server a pass for nothing.
        cursor = coll.find({}, batch_size=1000)
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
    return CollectionDumpResult(name, documents, written, time.perf_counter() - started)


def _prepare(out_dir: Path, db_name: str, server_version: str) -> Path:
    db_dir = out_dir / db_name
    db_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / PRELUDE).write_text(prelude_json(server_version, f"paletai {paletai.__version__}"))
    return db_dir


async def backup(
    uri: str,
    out_dir: Path,
    *,
    db_name: str | None = None,
    compress: bool = False,
    progress: Progress | None = None,
) -> BackupResult:
    """Dump every collection of one database into `out_dir/<db>/`."""
    name = database_from_uri(uri, db_name)
    client = await connect(uri, role="source")
    try:
        db = client.get_database(name, codec_options=RAW_CODEC)
        build = await client.admin.command("buildInfo")
        db_dir = _prepare(out_dir, name, str(build.get("version", "unknown")))
        result = BackupResult(database=name, directory=str(out_dir))
        started = time.perf_counter()
        for coll_name in await require_collections(client, db, uri, "source"):
            result.collections.append(
                await dump_collection(db, coll_name, db_dir, compress=compress, progress=progress)
            )
        result.seconds = time.perf_counter() - started
        return result
    finally:
        await client.close()
