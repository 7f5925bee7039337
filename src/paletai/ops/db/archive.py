"""The single-file archive stock `mongodump --archive` writes (and `mongorestore --archive` reads).

Byte layout (mongo-tools `common/archive`, format version "0.1"):

    magic number 0x8199e26d (little-endian)
    header BSON {concurrent_collections: int32, version, server_version, tool_version}
    one BSON per namespace {db, collection, metadata: canonical Extended JSON text, size, type}
    terminator 0xffffffff
    blocks, namespaces interleaved:
      {db, collection, EOF: false, CRC: int64 0}  documents...                  terminator
      {db, collection, EOF: true,  CRC: int64 CRC-64/ECMA of all its documents}  terminator

The oplog of `mongodump --oplog` is the namespace db "" / collection "oplog". `--gzip` compresses
the whole stream (as `mongodump --archive --gzip`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gzip
import io
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import bson
from bson import Int64

from paletai.ops.errors import OpsError

MAGIC = 0x8199E26D
MAGIC_BYTES = struct.pack("<I", MAGIC)
TERMINATOR = b"\xff\xff\xff\xff"
FORMAT_VERSION = "0.1"
MAX_BSON_SIZE = 16 * 1024 * 1024 + 16 * 1024  # as the dump reader: 16 MB plus oplog slack
GZIP_MAGIC = b"\x1f\x8b"
# Where mongodump puts the oplog in an archive (a top-level "oplog.bson" in a directory dump).
OPLOG_DB = ""
OPLOG_COLLECTION = "oplog"
_U64 = (1 << 64) - 1


# --- CRC-64/ECMA as Go's hash/crc64 (ECMA table) computes it: the same as CRC-64/XZ -----------


def _crc_table() -> list[int]:
    poly = 0xC96C5795D7870F42  # ECMA-182, bit-reflected
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def _crc64_python(data: bytes, crc: int = 0) -> int:
    table = _TABLE
    crc ^= _U64
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U64


def _liblzma_crc64() -> Callable[[bytes, int], int] | None:
    """liblzma's lzma_crc64 (CRC-64/XZ, the same function), which the stdlib's lzma loads."""
    name = ctypes.util.find_library("lzma") or "liblzma.so.5"
    try:
        lib = ctypes.CDLL(name)
        func = lib.lzma_crc64
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.c_uint64
    func.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
    if func(b"123456789", 9, 0) != 0x995DC9BBDF1939FA:  # the CRC-64/XZ check value
        return None

    def crc64(data: bytes, crc: int = 0) -> int:
        return int(func(data, len(data), crc))

    return crc64


_FAST_CRC = _liblzma_crc64()


def crc64_ecma(data: bytes, crc: int = 0) -> int:
    """CRC-64/ECMA of `data`, continuing from `crc` (0 to start)."""
    if _FAST_CRC is not None:
        return _FAST_CRC(data, crc)
    return _crc64_python(data, crc)


# --- the parts of an archive ------------------------------------------------------------------


@dataclass
class ArchivedNamespace:
    """One prelude entry: a collection (its metadata.json text), a view, or the oplog."""

    db: str
    collection: str
    metadata: str = ""
    type: str = "collection"
    size: int = 0

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"

    @property
    def data_collection(self) -> str:
        """Where its documents are: a time-series collection's are in its buckets collection."""
        if self.type == "timeseries":
            return f"system.buckets.{self.collection}"
        return self.collection

    @property
    def is_oplog(self) -> bool:
        return self.db == OPLOG_DB and self.collection == OPLOG_COLLECTION


def _namespace_header(db: str, collection: str, *, eof: bool, crc: int) -> bytes:
    signed = crc - (1 << 64) if crc >= 1 << 63 else crc  # Go writes the uint64's bits as int64
    return bson.encode({"db": db, "collection": collection, "EOF": eof, "CRC": Int64(signed)})


class ArchiveWriter:
    """Writes an archive to a binary stream: the prelude, then documents by namespace."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.current: tuple[str, str] | None = None
        self.crcs: dict[tuple[str, str], int] = {}
        self.bytes_written = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.bytes_written += len(data)

    def write_prelude(
        self,
        namespaces: list[ArchivedNamespace],
        *,
        server_version: str,
        tool_version: str,
        concurrent_collections: int = 1,
    ) -> None:
        header = {
            "concurrent_collections": concurrent_collections,
            "version": FORMAT_VERSION,
            "server_version": server_version,
            "tool_version": tool_version,
        }
        self._write(MAGIC_BYTES + bson.encode(header))
        for ns in namespaces:
            entry = {
                "db": ns.db,
                "collection": ns.collection,
                "metadata": ns.metadata,
                "size": ns.size,
                "type": ns.type,
            }
            self._write(bson.encode(entry))
        self._write(TERMINATOR)

    def write_documents(self, db: str, collection: str, data: bytes) -> None:
        """Append whole BSON documents (back to back) to the namespace's data."""
        key = (db, collection)
        if self.current != key:
            if self.current is not None:
                self._write(TERMINATOR)
            self._write(_namespace_header(db, collection, eof=False, crc=0))
            self.current = key
        self._write(data)
        self.crcs[key] = crc64_ecma(data, self.crcs.get(key, 0))

    def end_namespace(self, db: str, collection: str) -> None:
        """Close a namespace: its EOF header carries the CRC of all its documents."""
        key = (db, collection)
        if key not in self.crcs:
            # An empty collection still opens a block, as mongodump's does.
            self.write_documents(db, collection, b"")
        if self.current is not None:
            self._write(TERMINATOR)
        self._write(_namespace_header(db, collection, eof=True, crc=self.crcs[key]))
        self._write(TERMINATOR)
        self.current = None


def open_archive_out(out: IO[bytes], *, compress: bool) -> IO[bytes]:
    """The stream to write an archive to: `out` itself, or gzip over it."""
    if compress:
        return cast(IO[bytes], gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6))
    return out


# --- reading ----------------------------------------------------------------------------------


_END = b""  # the stream ended where a block may start


class ArchiveReader:
    """Reads an archive from a binary stream, checking its structure and every CRC.

    Any deviation (not an archive, truncated, a CRC mismatch, a namespace the prelude does not
    name) is an OpsError of one line naming the byte offset."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self.stream = stream
        self.name = name
        self.offset = 0
        self.header: dict[str, Any] = {}
        self.namespaces: list[ArchivedNamespace] = []

    def _fail(self, what: str) -> OpsError:
        return OpsError(f"{self.name}: corrupt archive at byte {self.offset}: {what}")

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:  # gzip: bad or truncated stream
            raise self._fail(f"cannot decompress ({exc})") from None

    def _next(self, *, block_start: bool = False) -> bytes | None:
        """The next BSON document; None at a terminator; _END where the stream may end."""
        head = self._read(4)
        if not head and block_start:
            return _END
        if len(head) != 4:
            raise self._fail("the stream ends inside a block (truncated archive?)")
        if head == TERMINATOR:
            self.offset += 4
            return None
        (size,) = struct.unpack("<i", head)
        if size < 5 or size > MAX_BSON_SIZE:
            raise self._fail(f"{size} is neither a BSON length nor a terminator")
        body = self._read(size - 4)
        if len(body) != size - 4:
            raise self._fail("the stream ends inside a document (truncated archive?)")
        if body[-1] != 0:
            raise self._fail("a BSON document does not end with a null byte")
        self.offset += size
        return head + body

    def _decode(self, raw: bytes) -> dict[str, Any]:
        try:
            return bson.decode(raw)
        except (bson.errors.InvalidBSON, ValueError) as exc:
            raise self._fail(f"invalid BSON ({exc})") from None

    def read_prelude(self) -> list[ArchivedNamespace]:
        magic = self._read(4)
        if magic[:2] == GZIP_MAGIC:
            raise OpsError(f"{self.name} is gzip-compressed: add --gzip")
        if magic != MAGIC_BYTES:
            raise OpsError(
                f"{self.name} is not a mongodump archive (no magic number 0x8199e26d); "
                "for a dump directory use --dir"
            )
        self.offset = 4
        first = self._next()
        if first is None:
            raise self._fail("no archive header")
        self.header = self._decode(first)
        while (raw := self._next()) is not None:
            entry = self._decode(raw)
            try:
                self.namespaces.append(
                    ArchivedNamespace(
                        db=str(entry["db"]),
                        collection=str(entry["collection"]),
                        metadata=str(entry.get("metadata") or ""),
                        type=str(entry.get("type") or ""),
                        size=int(entry.get("size") or 0),
                    )
                )
            except KeyError as exc:
                raise self._fail(f"a prelude entry has no {exc.args[0]!r}") from None
        return self.namespaces

    def documents(self) -> Iterator[tuple[ArchivedNamespace, bytes | None]]:
        """(namespace, raw document) in archive order; (namespace, None) when one ends."""
        known: dict[tuple[str, str], ArchivedNamespace] = {}
        for ns in self.namespaces:
            # Time-series data is under system.buckets.<name> (sources before 8.3) or <name>.
            known[(ns.db, ns.collection)] = known[(ns.db, ns.data_collection)] = ns
        crcs: dict[str, int] = {}
        closed: set[str] = set()
        while True:
            raw = self._next(block_start=True)
            if raw is None:
                raise self._fail("two terminators in a row (a block without a header)")
            if not raw:
                break
            header = self._decode(raw)
            try:
                key = (str(header["db"]), str(header["collection"]))
                eof = bool(header["EOF"])
                crc = int(header["CRC"]) & _U64
            except KeyError as exc:
                raise self._fail(f"a namespace header has no {exc.args[0]!r}") from None
            found = known.get(key)
            if found is None:
                raise self._fail(f"data for {key[0]}.{key[1]}, which the prelude does not list")
            ns, name = found, found.namespace
            if name in closed:
                raise self._fail(f"data for {name} after its end")
            if eof:
                if crcs.get(name, 0) != crc:
                    raise self._fail(f"CRC mismatch for {name} ({crcs.get(name, 0)} != {crc})")
                closed.add(name)
                if self._next() is not None:
                    raise self._fail(f"documents after the end of {name}")
                yield ns, None
                continue
            while (doc := self._next()) is not None:
                crcs[name] = crc64_ecma(doc, crcs.get(name, 0))
                yield ns, doc
        missing = [ns.namespace for ns in self.namespaces if ns.namespace not in closed]
        if missing:
            raise OpsError(
                f"{self.name}: the archive ends before these namespaces end: "
                f"{', '.join(missing)} (truncated archive?)"
            )


def open_archive_in(stream: IO[bytes], *, compressed: bool) -> IO[bytes]:
    """The stream to read an archive from: buffered, and gunzipped when `compressed`."""
    if compressed:
        return cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb"))
    if isinstance(stream, io.BufferedReader):
        return stream
    return cast(IO[bytes], io.BufferedReader(cast(Any, stream), buffer_size=1024 * 1024))
