"""The directory layout stock mongodump writes (and mongorestore reads).

    DIR/prelude.json                         {"ServerVersion": ..., "ToolVersion": ...}
    DIR/<db>/<coll>.bson[.gz]                BSON documents back to back
    DIR/<db>/<coll>.metadata.json[.gz]       canonical Extended JSON v2: options, indexes, uuid,
                                             collectionName, type
    DIR/<db>/$admin.system.users.bson[.gz]   with --include-users (mongodump --db X
    DIR/<db>/$admin.system.roles.bson[.gz]   --dumpDbUsersAndRoles): admin.system.users/roles
    DIR/<db>/$admin.system.version.bson[.gz] documents of <db>, and the auth schema version

Readers accept both plain and gzip files, and metadata with legacy (plain JSON) numbers.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import bson
from bson import json_util
from bson.raw_bson import RawBSONDocument

from paletai.ops.db.common import RAW_CODEC
from paletai.ops.errors import OpsError

PRELUDE = "prelude.json"
BUCKETS_PREFIX = "system.buckets."  # a time-series collection's data: <db>/system.buckets.<c>.bson
BSON_SUFFIX = ".bson"
METADATA_SUFFIX = ".metadata.json"
MAX_BSON_SIZE = 16 * 1024 * 1024 + 16 * 1024  # 16 MB plus mongod's internal slack
# Users and roles of one database, named as mongodump names them (never restored as collections).
AUTH_PREFIX = "$admin."
USERS_FILE = "$admin.system.users"
ROLES_FILE = "$admin.system.roles"
AUTH_VERSION_FILE = "$admin.system.version"


def metadata_json(
    *,
    collection: str,
    options: dict[str, Any],
    indexes: list[dict[str, Any]],
    uuid_hex: str,
    kind: str = "collection",
) -> str:
    """Metadata in canonical Extended JSON v2, in the key order mongodump writes. `kind` is
    listCollections' type: a view's options hold viewOn/pipeline, a time-series' `timeseries`."""
    doc = {
        "indexes": [dict(ix) for ix in indexes],
        "uuid": uuid_hex,
        "collectionName": collection,
        "type": kind,
    }
    canonical = json_util.CANONICAL_JSON_OPTIONS
    return json_util.dumps({"options": options, **doc}, json_options=canonical)


def prelude_json(server_version: str, tool_version: str) -> str:
    return json.dumps({"ServerVersion": server_version, "ToolVersion": tool_version})


class FileOpener(Protocol):
    """Opens a dump file for writing (`open_write`, or a blob in ops/db/blob.py)."""

    def __call__(self, path: Path, *, compress: bool) -> IO[bytes]: ...


def open_write(path: Path, *, compress: bool) -> IO[bytes]:
    if compress:
        return cast(IO[bytes], gzip.open(path.with_name(path.name + ".gz"), "wb", compresslevel=6))
    return path.open("wb", buffering=1024 * 1024)


def _open_read(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb", buffering=1024 * 1024)


def read_raw_documents(path: Path) -> Iterator[RawBSONDocument]:
    """The documents of a .bson or .bson.gz file, as raw BSON, one at a time."""
    with _open_read(path) as stream:
        yield from iter_raw_documents(stream, str(path))


def iter_raw_documents(stream: IO[bytes], label: str) -> Iterator[RawBSONDocument]:
    """The documents of a BSON stream (a file, a blob being downloaded), one at a time."""
    offset = 0
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) < 4:
            raise OpsError(f"{label}: truncated at byte {offset} (partial length prefix)")
        (size,) = struct.unpack("<i", head)
        if size < 5 or size > MAX_BSON_SIZE:
            raise OpsError(
                f"{label}: not BSON at byte {offset} (document length {size}); "
                "is this a mongodump .bson file?"
            )
        body = stream.read(size - 4)
        if len(body) != size - 4 or body[-1:] != b"\x00":
            raise OpsError(f"{label}: truncated document at byte {offset}")
        yield RawBSONDocument(head + body, RAW_CODEC)
        offset += size


def read_json_file(path: Path) -> Any:
    with _open_read(path) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8").read()
    try:
        # json_util reads canonical and relaxed Extended JSON and plain (legacy) numbers alike.
        return json_util.loads(text)
    except (ValueError, TypeError) as exc:
        raise OpsError(f"{path}: not valid Extended JSON ({exc})") from exc


@dataclass
class DumpedCollection:
    db: str
    name: str
    data_path: Path | None
    metadata_path: Path | None
    options: dict[str, Any] = field(default_factory=dict)
    indexes: list[dict[str, Any]] = field(default_factory=list)
    # listCollections' type: "collection", "view" (no data) or "timeseries" (data = its buckets)
    kind: str = "collection"

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.name}"

    @property
    def size_bytes(self) -> int:
        return self.data_path.stat().st_size if self.data_path else 0


def _strip(name: str, suffix: str) -> str | None:
    for ending in (suffix, suffix + ".gz"):
        if name.endswith(ending):
            return name[: -len(ending)]
    return None


def _scan_db_dir(db_dir: Path) -> list[DumpedCollection]:
    found: dict[str, DumpedCollection] = {}
    for path in sorted(db_dir.iterdir()):
        if not path.is_file():
            continue
        meta_name = _strip(path.name, METADATA_SUFFIX)
        data_name = None if meta_name is not None else _strip(path.name, BSON_SUFFIX)
        name = meta_name if meta_name is not None else data_name
        if name is None:
            continue
        item = found.setdefault(name, DumpedCollection(db_dir.name, name, None, None))
        if meta_name is not None:
            item.metadata_path = path
        else:
            item.data_path = path
    collections = []
    for item in found.values():
        if item.name.startswith(("system.", AUTH_PREFIX)):
            continue  # a time-series' buckets are read with it, below
        if item.metadata_path is not None:
            meta = read_json_file(item.metadata_path)
            if not isinstance(meta, dict):
                raise OpsError(f"{item.metadata_path}: metadata is not a JSON object")
            item.options = dict(meta.get("options") or {})
            # Stock dumps of old servers carry "ns" in each index; `indexes` may be null there.
            item.indexes = [dict(ix) for ix in (meta.get("indexes") or [])]
            item.kind = str(meta.get("type") or "collection")
        if item.kind == "view":
            item.data_path = None  # a view's documents are its source's; mongodump writes none
        elif item.kind == "timeseries":
            # Stock mongodump (servers before 8.3) writes a time-series' data as its buckets.
            buckets = found.get(BUCKETS_PREFIX + item.name)
            item.data_path = buckets.data_path if buckets else item.data_path
        collections.append(item)
    return collections


def read_dump(directory: Path) -> list[DumpedCollection]:
    """The collections of a dump directory (DIR/<db>/...), or of one database's folder."""
    if not directory.is_dir():
        raise OpsError(f"{directory} is not a directory")
    collections: list[DumpedCollection] = []
    subdirs = [p for p in sorted(directory.iterdir()) if p.is_dir()]
    for sub in subdirs:
        collections.extend(_scan_db_dir(sub))
    if not collections:
        # `mongorestore --db X DIR/X` style: the folder of one database.
        collections = _scan_db_dir(directory)
    if not collections:
        raise OpsError(
            f"{directory} is not a dump: expected DIR/<db>/<collection>.bson "
            "and <collection>.metadata.json files (as mongodump writes them)"
        )
    return collections


@dataclass
class DumpedAuth:
    """The users and roles files a dump holds for one database (either may be absent)."""

    db: str
    users: Path | None
    roles: Path | None


def _data_file(db_dir: Path, stem: str) -> Path | None:
    for name in (stem + BSON_SUFFIX, stem + BSON_SUFFIX + ".gz"):
        if (db_dir / name).is_file():
            return db_dir / name
    return None


def read_dumped_auth(directory: Path) -> list[DumpedAuth]:
    """The databases of a dump (or of one database's folder) that carry users or roles."""
    found = []
    for db_dir in [directory, *(p for p in sorted(directory.iterdir()) if p.is_dir())]:
        users, roles = _data_file(db_dir, USERS_FILE), _data_file(db_dir, ROLES_FILE)
        if users or roles:
            found.append(DumpedAuth(db_dir.name, users, roles))
    return found


def count_documents(path: Path) -> int:
    """How many documents a .bson or .bson.gz file holds (reads gzip files through)."""
    if not path.name.endswith(".gz"):
        return count_bson_file(path)[0]
    return sum(1 for _ in read_raw_documents(path))


def count_bson_file(path: Path) -> tuple[int, int]:
    """(documents, bytes) in a .bson file, reading only the length prefixes (plain files)."""
    if path.name.endswith(".gz"):
        return -1, path.stat().st_size
    docs = 0
    size = path.stat().st_size
    with path.open("rb") as stream:
        offset = 0
        while offset < size:
            stream.seek(offset)
            head = stream.read(4)
            if len(head) < 4:
                break
            offset += struct.unpack("<i", head)[0]
            docs += 1
    return docs, size


def encode_index_for_dump(spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """An index spec as mongodump stores it (no `ns`, which modern servers refuse)."""
    out = {k: v for k, v in spec.items() if k != "ns"}
    out.setdefault("v", 2)
    return out


def raw_size(doc: RawBSONDocument) -> int:
    return len(doc.raw)


def decode_raw(doc: RawBSONDocument) -> dict[str, Any]:
    return bson.decode(doc.raw)
