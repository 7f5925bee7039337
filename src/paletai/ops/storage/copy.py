"""Copy the cover images from the old storage account to the new one, and repoint the games.

Server-side copy (`start_copy_from_url` with a read SAS for the source) where the destination can
read the source; otherwise (firewalled source, another emulator instance, `--no-server-copy`) the
blob is streamed through this process. Every copy is verified (length and MD5). A blob already in
the destination with the same length and MD5 is skipped, so a second run is quick and an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobProperties, BlobSasPermissions, generate_blob_sas
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

from paletai.db.client import Database, database_name, make_client
from paletai.ops.results import BlobCopyFigures, StorageCopyResult, UrlRewriteFigures
from paletai.storage.azure_blob import ensure_public_container, error_code, public_url
from paletai.storage.base import StorageError

log = logging.getLogger(__name__)

Action = Literal["copied", "skipped", "failed"]
COPY_POLL_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class BlobOutcome:
    """What happened to one blob."""

    name: str
    action: Action
    size: int
    method: Literal["server", "stream", "none"] = "none"
    error: str | None = None


@dataclass
class CopyReport:
    source: str
    destination: str
    total: int = 0
    copied: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_copied: int = 0
    bytes_skipped: int = 0
    server_side: int = 0
    streamed: int = 0
    # False when the source is public but the destination container is private (images break).
    destination_public: bool | None = None
    failures: dict[str, str] = field(default_factory=dict)
    # Names that are in the destination and verified identical (copied or skipped).
    present: set[str] = field(default_factory=set)

    def add(self, outcome: BlobOutcome) -> None:
        if outcome.action == "failed":
            self.failed += 1
            self.failures[outcome.name] = outcome.error or "failed"
            return
        self.present.add(outcome.name)
        if outcome.action == "skipped":
            self.skipped += 1
            self.bytes_skipped += outcome.size
            return
        self.copied += 1
        self.bytes_copied += outcome.size
        if outcome.method == "server":
            self.server_side += 1
        else:
            self.streamed += 1

    def to_figures(self) -> BlobCopyFigures:
        return BlobCopyFigures(
            source=self.source,
            destination=self.destination,
            total=self.total,
            copied=self.copied,
            skipped=self.skipped,
            failed=self.failed,
            bytes_copied=self.bytes_copied,
            bytes_skipped=self.bytes_skipped,
            server_side=self.server_side,
            streamed=self.streamed,
            destination_public=self.destination_public,
            failures=self.failures,
        )


class CopyFailed(Exception):
    """One blob could not be copied or did not verify; the message says why."""


class ServerCopyUnavailable(Exception):
    """The destination cannot copy from the source by itself; stream it instead."""


def _md5(props: BlobProperties) -> bytes | None:
    value = props.content_settings.content_md5
    return bytes(value) if value else None


async def _hash_blob(blob: BlobClient) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    downloader = await blob.download_blob()
    async for chunk in downloader.chunks():
        digest.update(chunk)
    return digest.digest()


def source_read_url(service: BlobServiceClient, blob: BlobClient) -> str:
    """A URL the destination account can read the source blob from.

    With an account key: a short read-only SAS for this blob. Otherwise the client's URL, which
    carries the connection string's SAS if there is one (or relies on public read access).
    """
    key = getattr(service.credential, "account_key", None)
    account = getattr(service.credential, "account_name", None)
    if key and account:
        now = dt.datetime.now(dt.UTC)
        sas = generate_blob_sas(
            account_name=account,
            container_name=blob.container_name,
            blob_name=blob.blob_name,
            account_key=key,
            permission=BlobSasPermissions(read=True),
            start=now - dt.timedelta(minutes=5),  # clock skew between the two accounts
            expiry=now + dt.timedelta(hours=2),
        )
        return f"{public_url(blob.url)}?{sas}"
    return blob.url


class ContainerCopier:
    """Copies one container to another; `run()` does it and returns the report."""

    def __init__(
        self,
        source: BlobServiceClient,
        destination: BlobServiceClient,
        container: str,
        dest_container: str | None = None,
        *,
        server_copy: bool = True,
        concurrency: int = 8,
        limit: int | None = None,
    ) -> None:
        self.source_service = source
        self.src: ContainerClient = source.get_container_client(container)
        self.dst: ContainerClient = destination.get_container_client(dest_container or container)
        self.server_copy = server_copy
        self.concurrency = max(1, concurrency)
        self.limit = limit
        # Source MD5s computed here (blobs uploaded without one), by name.
        self._computed_md5: dict[str, bytes] = {}

    @property
    def source_url(self) -> str:
        return public_url(self.src.url)

    @property
    def destination_url(self) -> str:
        return public_url(self.dst.url)

    async def list_source(self) -> list[BlobProperties]:
        try:
            return [b async for b in self.src.list_blobs(include=["metadata"])]
        except ResourceNotFoundError:
            raise StorageError(f"source container {self.source_url} does not exist") from None

    async def prepare_destination(self) -> bool | None:
        """Create the destination container, public if the source is.

        Returns whether the destination is publicly readable when the source is (else None).
        """
        props = await self.src.get_container_properties()
        if props.public_access:
            return await ensure_public_container(self.dst)
        try:
            await self.dst.create_container()
        except HttpResponseError as exc:
            if error_code(exc) != "ContainerAlreadyExists":
                raise
        return None

    async def run(
        self,
        blobs: list[BlobProperties] | None = None,
        on_outcome: Callable[[BlobOutcome], None] | None = None,
    ) -> CopyReport:
        """Copy every blob (or the first `limit` that need copying) and verify each."""
        if blobs is None:
            blobs = await self.list_source()
        public = await self.prepare_destination()
        existing = {b.name: b async for b in self.dst.list_blobs(include=["copy"])}
        report = CopyReport(self.source_url, self.destination_url, total=len(blobs))
        report.destination_public = public
        queue: asyncio.Queue[BlobProperties] = asyncio.Queue()
        for blob in blobs:
            queue.put_nowait(blob)
        budget = [self.limit]

        async def worker() -> None:
            while not queue.empty():
                src = queue.get_nowait()
                outcome = await self._one(src, existing.get(src.name), budget)
                if outcome is None:
                    continue  # past --limit: neither copied nor skipped
                report.add(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)

        await _run_all([worker for _ in range(self.concurrency)])
        return report

    async def _one(
        self, src: BlobProperties, dst: BlobProperties | None, budget: list[int | None]
    ) -> BlobOutcome | None:
        name = src.name
        try:
            if dst is not None and await self._identical(src, dst):
                return BlobOutcome(name, "skipped", src.size)
            if budget[0] is not None:
                if budget[0] <= 0:
                    return None
                budget[0] -= 1
            method = await self._copy(src)
            await self._verify(src)
            return BlobOutcome(name, "copied", src.size, method)
        except (CopyFailed, AzureError, StorageError, OSError) as exc:
            reason = str(exc) if isinstance(exc, CopyFailed) else _describe(exc)
            log.warning("copy of %s failed: %s", name, reason)
            return BlobOutcome(name, "failed", src.size, error=reason)

    async def _source_md5(self, src: BlobProperties) -> bytes:
        known = _md5(src) or self._computed_md5.get(src.name)
        if known is None:
            known = await _hash_blob(self.src.get_blob_client(src.name))
            self._computed_md5[src.name] = known
        return known

    async def _identical(self, src: BlobProperties, dst: BlobProperties) -> bool:
        if dst.size != src.size:
            return False
        if dst.copy is not None and dst.copy.status in ("pending", "failed", "aborted"):
            return False
        dst_md5 = _md5(dst)
        if dst_md5 is None:
            dst_md5 = await _hash_blob(self.dst.get_blob_client(dst.name))
        return dst_md5 == await self._source_md5(src)

    async def _copy(self, src: BlobProperties) -> Literal["server", "stream"]:
        if self.server_copy:
            try:
                await self._server_copy(src)
                return "server"
            except ServerCopyUnavailable as exc:
                log.info("server-side copy of %s not possible (%s); streaming it", src.name, exc)
        await self._stream_copy(src)
        return "stream"

    async def _server_copy(self, src: BlobProperties) -> None:
        source_blob = self.src.get_blob_client(src.name)
        dest_blob = self.dst.get_blob_client(src.name)
        try:
            started = await dest_blob.start_copy_from_url(
                source_read_url(self.source_service, source_blob)
            )
        except HttpResponseError as exc:
            # e.g. CannotVerifyCopySource: the destination cannot reach or read the source.
            raise ServerCopyUnavailable(_describe(exc)) from None
        status = started.get("copy_status")
        delay, waited = 0.1, 0.0
        while status == "pending":
            if waited > COPY_POLL_TIMEOUT_SECONDS:
                props = await dest_blob.get_blob_properties()
                if props.copy.id:
                    await dest_blob.abort_copy(props.copy.id)
                raise ServerCopyUnavailable(f"still pending after {waited:.0f} s")
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 2.0)
            status = (await dest_blob.get_blob_properties()).copy.status
        if status != "success":
            raise ServerCopyUnavailable(f"copy status {status}")

    async def _stream_copy(self, src: BlobProperties) -> None:
        source_blob = self.src.get_blob_client(src.name)
        dest_blob = self.dst.get_blob_client(src.name)
        expected = _md5(src) or self._computed_md5.get(src.name)
        digest = hashlib.md5(usedforsecurity=False)
        downloader = await source_blob.download_blob()

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in downloader.chunks():
                digest.update(chunk)
                yield chunk

        settings = src.content_settings
        # None when unknown: recorded after the upload below, once the bytes have been read.
        settings.content_md5 = bytearray(expected) if expected is not None else None
        await dest_blob.upload_blob(
            chunks(),
            length=src.size,
            overwrite=True,
            content_settings=settings,
            metadata=src.metadata or None,
        )
        read = digest.digest()
        if expected is not None and read != expected:
            await dest_blob.delete_blob()
            raise CopyFailed("MD5 of the bytes read differs from the source's Content-MD5")
        if expected is None:
            self._computed_md5[src.name] = read
            settings.content_md5 = bytearray(read)
            await dest_blob.set_http_headers(content_settings=settings)

    async def _verify(self, src: BlobProperties) -> None:
        dest_blob = self.dst.get_blob_client(src.name)
        props = await dest_blob.get_blob_properties()
        if props.size != src.size:
            raise CopyFailed(f"length differs: source {src.size}, destination {props.size}")
        expected = await self._source_md5(src)
        got = _md5(props)
        if got is None:
            # A server-side copy of a blob without Content-MD5: hash the copy, then record the
            # MD5 on it so the next run can compare without downloading.
            got = await _hash_blob(dest_blob)
            if got == expected:
                settings = props.content_settings
                settings.content_md5 = bytearray(got)
                await dest_blob.set_http_headers(content_settings=settings)
        if got != expected:
            raise CopyFailed("MD5 differs between source and destination")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HttpResponseError):
        return f"{error_code(exc)} (HTTP {exc.status_code})"
    # First line only: the SDK appends request details that can be long.
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


async def _run_all(workers: list[Callable[[], Awaitable[None]]]) -> None:
    """Run the workers; the first error (or cancellation) stops the others and propagates as is."""
    tasks = [asyncio.ensure_future(w()) for w in workers]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class RewriteReport:
    old_prefix: str
    new_prefix: str
    rewritten: int = 0
    already: int = 0
    missing: int = 0  # pointed at the old account, but the blob is not verified in the new one

    def to_figures(self) -> UrlRewriteFigures:
        return UrlRewriteFigures(
            old_prefix=self.old_prefix,
            new_prefix=self.new_prefix,
            rewritten=self.rewritten,
            already=self.already,
            missing=self.missing,
        )


def storage_copy_result(copy: CopyReport, rewrite: RewriteReport | None) -> StorageCopyResult:
    """`storage copy --json`: the copy's figures, and the URL rewrite's when it ran."""
    return StorageCopyResult(
        copy_=copy.to_figures(), rewrite=rewrite.to_figures() if rewrite is not None else None
    )


async def rewrite_image_urls(
    db: Database, old_prefix: str, new_prefix: str, present: set[str] | None = None
) -> RewriteReport:
    """Point `games.image_url` from the old container URL to the new one.

    Only games whose blob is in `present` (verified in the destination) are changed, when given,
    so a failed copy never leaves a game with a broken image. Idempotent.
    """
    old_prefix = old_prefix.rstrip("/") + "/"
    new_prefix = new_prefix.rstrip("/") + "/"
    report = RewriteReport(old_prefix, new_prefix)
    # A plain scan: prefix queries ($regex) behave differently across Atlas, Cosmos DB and the
    # embedded server, and the games collection is small enough to read once.
    cursor = db["games"].find({}, {"image_url": 1})
    async for doc in cursor:
        url = doc.get("image_url")
        if not isinstance(url, str):
            continue
        if url.startswith(new_prefix):
            report.already += 1
            continue
        if not url.startswith(old_prefix):
            continue
        # Without any query: a SAS on an old URL must not be carried over.
        path = url[len(old_prefix) :].split("?", 1)[0]
        if present is not None and unquote(path) not in present:
            report.missing += 1
            continue
        result = await db["games"].update_one(
            {"_id": doc["_id"], "image_url": url}, {"$set": {"image_url": new_prefix + path}}
        )
        report.rewritten += result.modified_count
    return report


@dataclass
class StorageCopyOutcome:
    """What `storage copy` did: the copy, and the URL rewrite when asked for."""

    copy: CopyReport
    rewrite: RewriteReport | None = None

    def to_result(self) -> StorageCopyResult:
        """`storage copy --json`."""
        return storage_copy_result(self.copy, self.rewrite)


def blob_service(connection_string: str, which: str) -> BlobServiceClient:
    """A client for a storage account; StorageError naming `which` (never the key) if invalid."""
    try:
        return BlobServiceClient.from_connection_string(connection_string)
    except ValueError:
        # Never echo the string: it holds the account key.
        raise StorageError(f"not a storage connection string ({which})") from None


async def copy_storage(
    source: str,
    destination: str,
    *,
    container: str = "game-images",
    to_container: str | None = None,
    server_copy: bool = True,
    concurrency: int = 8,
    limit: int | None = None,
    rewrite_db_uri: str | None = None,
    db_name: str | None = None,
    on_listed: Callable[[ContainerCopier, list[BlobProperties]], None] | None = None,
    on_outcome: Callable[[BlobOutcome], None] | None = None,
) -> StorageCopyOutcome:
    """`storage copy`: copy the container between two accounts (connection strings), then,
    with `rewrite_db_uri`, point `games.image_url` at the new account in that database.

    `on_listed` sees the source listing before the copy starts, `on_outcome` each blob's result
    (the CLI's progress bar). Raises StorageError (or the SDK's AzureError) on what stops it.
    """
    src = blob_service(source, "--from")
    dst = blob_service(destination, "--to")
    async with src, dst:
        copier = ContainerCopier(
            src,
            dst,
            container,
            to_container,
            server_copy=server_copy,
            concurrency=concurrency,
            limit=limit,
        )
        blobs = await copier.list_source()
        if on_listed is not None:
            on_listed(copier, blobs)
        result = StorageCopyOutcome(await copier.run(blobs, on_outcome=on_outcome))
        if rewrite_db_uri is not None:
            client = make_client(rewrite_db_uri)
            try:
                result.rewrite = await rewrite_image_urls(
                    client[database_name(rewrite_db_uri, db_name)],
                    copier.source_url,
                    copier.destination_url,
                    present=result.copy.present,
                )
            finally:
                await client.close()
    return result
