"""Backups in Azure Blob Storage: `db backup --to-blob`, retention, `db restore --from-blob`.

One folder per backup, `paletai-<db>-<UTC yyyymmddThhmmssZ>/`, in stock `mongodump --gzip --out`
layout (`prelude.json`, `<db>/<coll>.bson.gz`, `<db>/<coll>.metadata.json.gz`), so a downloaded
folder restores with stock `mongorestore --gzip`. `manifest.json` is written last: a folder
without it is an upload that never finished, and is never taken for a backup.

Each file streams into its blob as staged blocks (uploads overlap the dump; a few blocks in memory
at most, nothing on local disk); a restore streams the blobs back, checking every blob's sha256 and
every collection's document count against the manifest.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import gzip
import hashlib
import io
import logging
import re
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobBlock, BlobClient, BlobServiceClient, ContainerClient
from bson import json_util
from pydantic import BaseModel, ConfigDict, ValidationError
from rich.progress import Progress

import paletai
from paletai.db.client import describe_hosts
from paletai.ops.db.backup import BackupResult, dump_collection
from paletai.ops.db.common import (
    RAW_CODEC,
    connect,
    database_from_uri,
    require_collections,
)
from paletai.ops.db.dumpfmt import (
    BSON_SUFFIX,
    METADATA_SUFFIX,
    PRELUDE,
    DumpedCollection,
    iter_raw_documents,
    prelude_json,
)
from paletai.ops.db.kinds import KIND_COLLECTION, KindNotKept, collection_specs
from paletai.ops.db.namespaces import NamespaceMapper, split_namespace
from paletai.ops.db.restore import (
    CollectionRestoreResult,
    RestoreResult,
    not_empty_error,
    restore_collection,
)
from paletai.ops.db.verify import verify
from paletai.ops.errors import OpsError
from paletai.ops.results import BlobBackupFigures, RestoreTestFigures, RetentionFigures

MANIFEST = "manifest.json"
FOLDER_PREFIX = "paletai-"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
FOLDER_PATTERN = re.compile(r"^paletai-(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)$")
BLOCK_BYTES = 4 * 1024 * 1024
UPLOADS_IN_FLIGHT = 3
# An incomplete backup younger than this may still be uploading: retention leaves it alone.
INCOMPLETE_GRACE = dt.timedelta(days=1)
MANIFEST_FORMAT = "paletai-blob-backup"
STORAGE_SCOPE = "https://storage.azure.com/.default"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def folder_name(database: str, started: dt.datetime) -> str:
    return f"{FOLDER_PREFIX}{database}-{started.astimezone(dt.UTC).strftime(STAMP_FORMAT)}"


# ---------------------------------------------------------------------------------------------
# The manifest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestFile(_Strict):
    name: str  # relative to the backup's folder
    size: int
    sha256: str


class ManifestCollection(_Strict):
    name: str
    documents: int
    bytes: int  # BSON bytes before compression
    data: str  # file names, relative to the folder
    metadata: str


class BackupManifest(_Strict):
    """What a complete backup holds; written after every other blob of the folder."""

    format: str = MANIFEST_FORMAT
    format_version: int = 1
    name: str
    database: str
    source: str  # hosts only, never credentials
    started_at: str
    finished_at: str
    paletai_version: str
    layout: str = "mongodump --gzip --out"
    collections: list[ManifestCollection]
    files: list[ManifestFile]

    def file(self, name: str) -> ManifestFile:
        for item in self.files:
            if item.name == name:
                return item
        raise OpsError(f"backup {self.name}: manifest.json lists no file {name}")

    @property
    def documents(self) -> int:
        return sum(c.documents for c in self.collections)


# ---------------------------------------------------------------------------------------------
# The container


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_account_url(location: str) -> bool:
    return location.startswith(("https://", "http://")) and ";" not in location


@dataclass
class BackupStore:
    """One blob container that holds backup folders (sync SDK: uploads run in threads)."""

    container: ContainerClient
    credential: Any | None = None

    @classmethod
    def open(cls, location: str, container: str) -> BackupStore:
        """`location` is a connection string, or an account URL (then DefaultAzureCredential:
        a managed identity, environment credentials or `az login`)."""
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", container):
            raise OpsError(
                f"{container!r} is not a blob container name: 3-63 lower-case letters, digits "
                "and single hyphens (e.g. --container db-backups)"
            )
        options: dict[str, Any] = {
            "max_single_get_size": BLOCK_BYTES,
            "max_chunk_get_size": BLOCK_BYTES,
        }
        if is_account_url(location):
            from azure.identity import DefaultAzureCredential

            # Its warning lists every credential it tried, over a dozen lines; ours is one.
            logging.getLogger("azure.identity").setLevel(logging.ERROR)
            credential = DefaultAzureCredential()
            service = BlobServiceClient(location.rstrip("/"), credential=credential, **options)
            store = cls(service.get_container_client(container), credential)
            # Sign in once, now: the storage client would retry a refused token for a minute.
            with store.calls("a token for Blob Storage"):
                try:
                    credential.get_token(STORAGE_SCOPE)
                except BaseException:
                    store.close()
                    raise
            return store
        try:
            service = BlobServiceClient.from_connection_string(location, **options)
        except ValueError:
            # Never echo the string: it holds the account key.
            raise OpsError(
                "--to-blob/--from-blob is neither a storage connection string "
                "(DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...) nor an account URL "
                "(https://ACCOUNT.blob.core.windows.net)"
            ) from None
        return cls(service.get_container_client(container))

    @property
    def url(self) -> str:
        return self.container.url.split("?", 1)[0]

    def close(self) -> None:
        self.container.close()
        if self.credential is not None:
            self.credential.close()

    @contextmanager
    def calls(self, what: str) -> Iterator[None]:
        """Turn the SDK's failures during `what` into one line that says what to do."""
        try:
            yield
        except ClientAuthenticationError as exc:
            raise OpsError(
                f"cannot sign in to {self.url} ({what}): {_first_line(exc)}; with an account URL "
                "the kit signs in with DefaultAzureCredential: run `az login`, use a managed "
                "identity with 'Storage Blob Data Contributor' on the account, or pass a "
                "connection string instead"
            ) from None
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None) or exc.status_code
            raise OpsError(
                f"Blob Storage refused {what} at {self.url}: {code}: {_first_line(exc)}"
            ) from None
        except AzureError as exc:
            raise OpsError(
                f"cannot reach Blob Storage at {self.url} ({what}): {_first_line(exc)}; check "
                "the account URL or connection string and the network"
            ) from None

    def ensure_container(self) -> None:
        with self.calls("creating the container"):
            try:
                self.container.create_container()  # private: backups are never public
            except ResourceExistsError:
                pass

    def list_backups(self, database: str | None = None) -> list[StoredBackup]:
        """The backup folders in the container, newest first (complete or not)."""
        found: dict[str, StoredBackup] = {}
        with self.calls("listing backups"):
            try:
                blobs = list(self.container.list_blobs(name_starts_with=FOLDER_PREFIX))
            except ResourceNotFoundError:
                return []
        for blob in blobs:
            folder, sep, rest = str(blob.name).partition("/")
            match = FOLDER_PATTERN.match(folder)
            if not sep or match is None:
                continue
            if database is not None and match["db"] != database:
                continue
            item = found.get(folder)
            if item is None:
                started = dt.datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=dt.UTC)
                item = found[folder] = StoredBackup(folder, match["db"], started)
            item.blobs += 1
            item.size += int(blob.size or 0)
            item.sizes[rest] = int(blob.size or 0)
            if rest == MANIFEST:
                item.complete = True
        return sorted(found.values(), key=lambda b: (b.started, b.name), reverse=True)

    def read_manifest(self, backup: str) -> BackupManifest:
        with self.calls(f"reading {backup}/{MANIFEST}"):
            try:
                data = self.container.download_blob(f"{backup}/{MANIFEST}").readall()
            except ResourceNotFoundError:
                raise OpsError(
                    f"backup {backup} is incomplete: it has no {MANIFEST} (its upload never "
                    "finished); restore a complete one, e.g. with --latest"
                ) from None
        try:
            return BackupManifest.model_validate_json(data)
        except ValidationError as exc:
            raise OpsError(f"{backup}/{MANIFEST} is not a paletai backup manifest: {exc}") from None

    def read_file(self, backup: str, entry: ManifestFile) -> bytes:
        """A small file of a backup, checked against the manifest."""
        with self.calls(f"reading {backup}/{entry.name}"):
            data = self.container.download_blob(f"{backup}/{entry.name}").readall()
        _check(backup, entry, len(data), hashlib.sha256(data).hexdigest())
        return data

    def open_file(self, backup: str, entry: ManifestFile) -> BlobReader:
        """A blob of a backup as a stream, hashed as it goes (see BlobReader.check)."""
        return BlobReader(self.container.get_blob_client(f"{backup}/{entry.name}"), backup, entry)

    def delete_backup(self, backup: str) -> None:
        """Delete a backup folder, its manifest first: a half-deleted backup is incomplete."""
        with self.calls(f"deleting {backup}"):
            names = [str(b.name) for b in self.container.list_blobs(name_starts_with=backup + "/")]
            names.sort(key=lambda n: n != f"{backup}/{MANIFEST}")
            for name in names:
                try:
                    self.container.delete_blob(name, delete_snapshots="include")
                except ResourceNotFoundError:
                    pass


@dataclass
class StoredBackup:
    name: str
    database: str
    started: dt.datetime
    complete: bool = False
    blobs: int = 0
    size: int = 0
    sizes: dict[str, int] = field(default_factory=dict)


def _check(backup: str, entry: ManifestFile, size: int, sha256: str) -> None:
    if size != entry.size or sha256 != entry.sha256:
        raise OpsError(
            f"backup {backup}: {entry.name} does not match its manifest (size {size} against "
            f"{entry.size}, sha256 {sha256[:12]}… against {entry.sha256[:12]}…): the blob was "
            "changed or damaged; restore another backup"
        )


# ---------------------------------------------------------------------------------------------
# Writing: a dump file streams into a block blob


class BlockBlobWriter(io.RawIOBase):
    """A writable stream into one block blob: blocks are staged by a thread pool as they fill
    (a few in flight), and the block list is committed on close. Leaving a `with` on an
    exception commits nothing."""

    def __init__(
        self, blob: BlobClient, pool: ThreadPoolExecutor, done: Callable[[str, int, str], None]
    ) -> None:
        super().__init__()
        self._blob = blob
        self._pool = pool
        self._done = done
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._pending: collections.deque[Future[Any]] = collections.deque()
        self._sha = hashlib.sha256()
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        if self.closed:
            return len(chunk)  # aborted: dropped
        self._sha.update(chunk)
        self._size += len(chunk)
        self._buffer += chunk
        while len(self._buffer) >= BLOCK_BYTES:
            self._stage(bytes(self._buffer[:BLOCK_BYTES]))
            del self._buffer[:BLOCK_BYTES]
        return len(chunk)

    def _stage(self, chunk: bytes) -> None:
        block_id = base64.b64encode(f"{len(self._blocks):010d}".encode()).decode()
        self._blocks.append(BlobBlock(block_id))
        self._pending.append(self._pool.submit(self._blob.stage_block, block_id, chunk))
        while len(self._pending) > UPLOADS_IN_FLIGHT:
            self._pending.popleft().result()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._buffer:
                self._stage(bytes(self._buffer))
                self._buffer.clear()
            while self._pending:
                self._pending.popleft().result()
            self._blob.commit_block_list(self._blocks)
            self._done(self._blob.blob_name, self._size, self._sha.hexdigest())
        finally:
            super().close()

    def abort(self) -> None:
        """Stop without committing: the blob keeps whatever it had (nothing, for a new one)."""
        for pending in self._pending:
            pending.cancel()
        self._pending.clear()
        super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class GzipBlobWriter(gzip.GzipFile):
    """gzip into a BlockBlobWriter, which it commits on close (and aborts on an exception)."""

    def __init__(self, raw: BlockBlobWriter) -> None:
        super().__init__(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0)
        self._raw = raw

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        self._raw.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._raw.abort()  # the trailer below goes nowhere: nothing is committed
            super().close()
        else:
            self.close()


class BackupFolderWriter:
    """The dump's file opener for one backup folder (a `dumpfmt.FileOpener`): each file becomes a
    blob `<folder>/<path>[.gz]`, and its name, size and sha256 are recorded for the manifest."""

    def __init__(self, store: BackupStore, folder: str, pool: ThreadPoolExecutor) -> None:
        self.store = store
        self.folder = folder
        self.pool = pool
        self.files: list[ManifestFile] = []

    def _record(self, blob_name: str, size: int, sha256: str) -> None:
        name = blob_name.removeprefix(self.folder + "/")
        self.files.append(ManifestFile(name=name, size=size, sha256=sha256))

    def __call__(self, path: Path, *, compress: bool) -> IO[bytes]:
        name = f"{self.folder}/{path.as_posix()}" + (".gz" if compress else "")
        raw = BlockBlobWriter(self.store.container.get_blob_client(name), self.pool, self._record)
        return cast(IO[bytes], GzipBlobWriter(raw) if compress else raw)

    def put(self, name: str, data: bytes) -> None:
        """A small file, in one request; refuses to overwrite."""
        self.store.container.upload_blob(f"{self.folder}/{name}", data, overwrite=False)
        self._record(f"{self.folder}/{name}", len(data), hashlib.sha256(data).hexdigest())


@dataclass
class BlobBackup:
    """A finished `--to-blob` backup: the dump's figures, its manifest and where it is."""

    result: BackupResult
    manifest: BackupManifest
    figures: BlobBackupFigures


async def backup_to_blob(
    uri: str,
    store: BackupStore,
    *,
    db_name: str | None = None,
    progress: Progress | None = None,
    started: dt.datetime | None = None,
) -> BlobBackup:
    """Dump one database into a new backup folder of `store` (gzip), manifest last."""
    name = database_from_uri(uri, db_name)
    client = await connect(uri, role="source")
    try:
        db = client.get_database(name, codec_options=RAW_CODEC)
        collection_names = await require_collections(client, db, uri, "source")
        # The manifest holds collections with data; a view or a time-series is said, never
        # left out quietly.
        others = [c for c in (await collection_specs(db)).values() if c.kind != KIND_COLLECTION]
        if others:
            raise KindNotKept(
                f"--to-blob cannot hold {', '.join(c.describe() for c in others)} of {name!r}: "
                "back them up to a directory (--out) or an archive"
            )
        build = await client.admin.command("buildInfo")
        started = started or utc_now()
        folder = folder_name(name, started)
        store.ensure_container()
        if any(b.name == folder for b in store.list_backups(name)):
            raise OpsError(f"a backup named {folder} is already in {store.url}; run it again")
        result = BackupResult(database=name, directory=f"{store.url}/{folder}")
        with ThreadPoolExecutor(UPLOADS_IN_FLIGHT, thread_name_prefix="blob-upload") as pool:
            writer = BackupFolderWriter(store, folder, pool)
            with store.calls(f"uploading {folder}"):
                writer.put(
                    PRELUDE,
                    prelude_json(str(build.get("version", "unknown")), _tool()).encode(),
                )
                for coll_name in collection_names:
                    result.collections.append(
                        await dump_collection(
                            db,
                            coll_name,
                            Path(name),
                            compress=True,
                            progress=progress,
                            open_out=writer,
                        )
                    )
                finished = utc_now()
                manifest = BackupManifest(
                    name=folder,
                    database=name,
                    source=describe_hosts(uri),
                    started_at=iso(started),
                    finished_at=iso(finished),
                    paletai_version=paletai.__version__,
                    collections=[
                        ManifestCollection(
                            name=c.name,
                            documents=c.documents,
                            bytes=c.bytes,
                            data=f"{name}/{c.name}{BSON_SUFFIX}.gz",
                            metadata=f"{name}/{c.name}{METADATA_SUFFIX}.gz",
                        )
                        for c in result.collections
                    ],
                    files=sorted(writer.files, key=lambda f: f.name),
                )
                # Last: from here on the backup is complete.
                store.container.upload_blob(
                    f"{folder}/{MANIFEST}",
                    manifest.model_dump_json(indent=2).encode(),
                    overwrite=False,
                )
        result.seconds = (finished - started).total_seconds()
        figures = BlobBackupFigures(
            url=store.url,
            container=store.container.container_name,
            name=folder,
            started_at=manifest.started_at,
            finished_at=manifest.finished_at,
            blobs=len(manifest.files) + 1,
            blob_bytes=sum(f.size for f in manifest.files),
        )
        return BlobBackup(result, manifest, figures)
    finally:
        await client.close()


def _tool() -> str:
    return f"paletai {paletai.__version__}"


# ---------------------------------------------------------------------------------------------
# Retention


@dataclass
class RetentionPlan:
    keep: list[StoredBackup]
    delete: list[StoredBackup]
    delete_incomplete: list[StoredBackup]


def plan_retention(
    backups: list[StoredBackup], *, keep_daily: int, keep_weekly: int, now: dt.datetime
) -> RetentionPlan:
    """Keep the newest complete backup of each of the last `keep_daily` days that have one, and
    of each of the last `keep_weekly` ISO weeks; the other complete ones go, and so do incomplete
    ones older than a day (younger ones may still be uploading)."""
    complete = sorted((b for b in backups if b.complete), key=lambda b: b.started, reverse=True)
    keep: dict[str, StoredBackup] = {}
    for limit, period in (
        (keep_daily, lambda b: b.started.date().isoformat()),
        (keep_weekly, lambda b: "{}-W{:02d}".format(*b.started.isocalendar()[:2])),
    ):
        seen: set[str] = set()
        for backup in complete:  # newest first: the first of each period is its newest
            key = period(backup)
            if key in seen:
                continue
            if len(seen) >= limit:
                break
            seen.add(key)
            keep[backup.name] = backup
    delete = [b for b in complete if b.name not in keep]
    stale = [b for b in backups if not b.complete and now - b.started > INCOMPLETE_GRACE]
    return RetentionPlan(list(keep.values()), delete, stale)


def apply_retention(
    store: BackupStore,
    database: str,
    *,
    keep_daily: int,
    keep_weekly: int,
    now: dt.datetime | None = None,
    deleted: Callable[[StoredBackup, bool], None] | None = None,
) -> RetentionFigures:
    """Prune the backups of `database` in `store`; `deleted(backup, complete)` hears each one."""
    plan = plan_retention(
        store.list_backups(database),
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        now=now or utc_now(),
    )
    for backup in [*plan.delete, *plan.delete_incomplete]:
        store.delete_backup(backup.name)
        if deleted is not None:
            deleted(backup, backup.complete)
    return RetentionFigures(
        keep_daily=keep_daily,
        keep_weekly=keep_weekly,
        kept=sorted(b.name for b in plan.keep),
        deleted=sorted(b.name for b in plan.delete),
        deleted_incomplete=sorted(b.name for b in plan.delete_incomplete),
    )


# ---------------------------------------------------------------------------------------------
# Reading: restore streams the blobs


class BlobReader(io.RawIOBase):
    """A readable stream over one blob, downloaded in chunks as it is read and hashed on the
    way; `check()` after the end compares size and sha256 with the manifest."""

    def __init__(self, blob: BlobClient, backup: str, entry: ManifestFile) -> None:
        super().__init__()
        self._blob = blob
        self._backup = backup
        self._entry = entry
        self._chunks: Iterator[bytes] | None = None
        self._current = memoryview(b"")
        self._sha = hashlib.sha256()
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._chunks is None:
            self._chunks = self._blob.download_blob().chunks()
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._sha.update(chunk)
            self._size += len(chunk)
            self._current = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._current))
        view[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def check(self) -> None:
        _check(self._backup, self._entry, self._size, self._sha.hexdigest())


def choose_backup(
    store: BackupStore, *, name: str | None, latest: bool, database: str | None
) -> str:
    """The backup to restore: `name` (refused when incomplete), or the newest complete one."""
    backups = store.list_backups(database)
    if name is not None:
        for backup in backups:
            if backup.name == name.rstrip("/"):
                if not backup.complete:
                    raise OpsError(
                        f"backup {backup.name} is incomplete: it has no {MANIFEST} (its upload "
                        "never finished); restore a complete one (--latest picks the newest)"
                    )
                return backup.name
        known = ", ".join(b.name for b in backups[:5]) or "none"
        raise OpsError(f"no backup {name} in {store.url} (newest there: {known})")
    assert latest
    for backup in backups:
        if backup.complete:
            return backup.name
    which = f" of database {database!r}" if database else ""
    raise OpsError(
        f"no complete backup{which} in {store.url}; make one with "
        "`paletai db backup --uri URI --to-blob ... --container ...`"
    )


@dataclass
class BlobRestore:
    result: RestoreResult
    manifest: BackupManifest


async def restore_from_blob(
    uri: str,
    store: BackupStore,
    backup: str,
    *,
    drop: bool = False,
    force: bool = False,
    mapper: NamespaceMapper | None = None,
    progress: Progress | None = None,
) -> BlobRestore:
    """Restore a complete backup folder, streamed from its blobs, checked against its manifest
    (sizes before anything is written; sha256 and document counts as each blob is read)."""
    mapper = mapper or NamespaceMapper()
    manifest = store.read_manifest(backup)
    listed = next((b for b in store.list_backups() if b.name == backup), None)
    sizes = listed.sizes if listed is not None else {}
    for entry in manifest.files:
        if sizes.get(entry.name) != entry.size:
            raise OpsError(
                f"backup {backup}: {entry.name} is missing or has another size than its manifest "
                f"says ({sizes.get(entry.name)} against {entry.size}); restore another backup"
            )
    plan: list[tuple[str, DumpedCollection, ManifestCollection]] = []
    for coll in manifest.collections:
        target = mapper.map(f"{manifest.database}.{coll.name}")
        if target is None:
            continue
        meta = json_util.loads(
            gzip.decompress(store.read_file(backup, manifest.file(coll.metadata))).decode()
        )
        dumped = DumpedCollection(
            manifest.database,
            coll.name,
            None,
            None,
            dict(meta.get("options") or {}),
            [dict(ix) for ix in (meta.get("indexes") or [])],
            kind=str(meta.get("type") or KIND_COLLECTION),
        )
        plan.append((target, dumped, coll))
    if not plan:
        raise OpsError(f"no collection of backup {backup} matches the namespace filter")
    client = await connect(uri, role="target")
    try:
        if not drop and not force:
            busy = []
            for target, _, _ in plan:
                db_name, coll_name = split_namespace(target)
                count = await client[db_name][coll_name].estimated_document_count()
                if count:
                    busy.append(f"{target} ({count} documents)")
            if busy:
                raise not_empty_error(busy)
        result = RestoreResult()
        started = utc_now()
        for target, dumped, coll in plan:
            db_name, coll_name = split_namespace(target)
            db = client.get_database(db_name, codec_options=RAW_CODEC)
            if drop:
                await db.drop_collection(coll_name)
            item = CollectionRestoreResult(namespace=target, source_namespace=dumped.namespace)
            result.collections.append(item)
            reader = store.open_file(backup, manifest.file(coll.data))
            label = f"{backup}/{coll.data}"
            with store.calls(f"reading {label}"):
                stream = gzip.GzipFile(fileobj=io.BufferedReader(reader, 1024 * 1024), mode="rb")
                try:
                    await restore_collection(
                        db,
                        coll_name,
                        dumped,
                        item,
                        progress=progress,
                        documents=iter_raw_documents(cast(IO[bytes], stream), label),
                        total=coll.documents,
                    )
                except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                    raise OpsError(
                        f"{label} is damaged ({exc}); {target} is incomplete: restore another "
                        "backup with --drop"
                    ) from None
            reader.check()
            if item.documents != coll.documents:
                raise OpsError(
                    f"backup {backup}: {coll.data} holds {item.documents} documents, its manifest "
                    f"says {coll.documents}; restore another backup"
                )
        result.seconds = (utc_now() - started).total_seconds()
        return BlobRestore(result, manifest)
    finally:
        await client.close()


# ---------------------------------------------------------------------------------------------
# --test-restore: the backup restored into a scratch database, verified, dropped


async def trial_restore(
    source_uri: str,
    database: str,
    store: BackupStore,
    backup: str,
    scratch_uri: str,
    *,
    progress: Progress | None = None,
    stamp: dt.datetime | None = None,
) -> RestoreTestFigures:
    """Restore `backup` into `<db>_restoretest_<stamp>` on `scratch_uri`, verify it against the
    source, then drop it (also on failure).

    Passes when every blob matched the manifest (sha256, size, document counts) and the indexes
    match the source's. Documents that differ from the source are reported: on a live database
    they are the writes made since the backup."""
    scratch = f"{database}_restoretest_{(stamp or utc_now()).strftime('%Y%m%d%H%M%S')}"
    figures = RestoreTestFigures(host=describe_hosts(scratch_uri), database=scratch)
    started = utc_now()
    mapper = NamespaceMapper(ns_from=[f"{database}.*"], ns_to=[f"{scratch}.*"])
    try:
        restored = await restore_from_blob(
            scratch_uri, store, backup, mapper=mapper, progress=progress
        )
        figures.restored_documents = restored.result.total("inserted")
        figures.matched_manifest = restored.result.ok
        report = await verify(source_uri, scratch_uri, db_name=database, target_db_name=scratch)
        figures.verify_identical = report.identical
        figures.documents_differing = sum(
            c.missing_in_target.count + c.extra_in_target.count + c.different.count
            for c in report.collections
        )
        figures.index_differences = sum(
            len(c.indexes_missing_in_target) + len(c.indexes_extra_in_target)
            for c in report.collections
        )
        missing = [c.name for c in report.collections if c.in_source and not c.in_target]
        if figures.index_differences:
            figures.problem = "the restored indexes differ from the source's"
        elif missing:
            figures.problem = f"collections missing after the restore: {', '.join(missing)}"
        elif not figures.matched_manifest:
            figures.problem = "some documents could not be inserted"
    except OpsError as exc:
        figures.problem = str(exc)
    finally:
        client = await connect(scratch_uri, role="scratch")
        try:
            await client.drop_database(scratch)
            figures.dropped = scratch not in await client.list_database_names()
        finally:
            await client.close()
    figures.ok = figures.problem is None
    figures.seconds = (utc_now() - started).total_seconds()
    return figures
