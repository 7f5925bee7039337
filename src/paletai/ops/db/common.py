"""What the database commands share: connecting with clear errors, raw BSON, indexes, _id order."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import bson
from bson import CodecOptions, ObjectId
from bson.binary import Binary, UuidRepresentation
from bson.raw_bson import RawBSONDocument
from pymongo import AsyncMongoClient, uri_parser
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConfigurationError,
    InvalidURI,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from paletai.db.client import DEFAULT_DB_NAME, describe_hosts
from paletai.ops.errors import OpsError

# Where `db sync` keeps its checkpoints, in the target database; never copied or verified.
SYNC_STATE_COLLECTION = "__paletai_sync"
# A deployment's own switches (the maintenance flag), not data: never copied or compared. Copying
# it would put the new side in maintenance after a cutover, and a reverse sync would then carry
# "maintenance off" back to the old side, reopening it for writes.
DEPLOYMENT_STATE_COLLECTIONS = frozenset({"service_state"})

# Documents stay raw BSON end to end, so bytes, field order and types survive a copy.
RAW_CODEC: CodecOptions[RawBSONDocument] = CodecOptions(
    document_class=RawBSONDocument,
    tz_aware=True,
    uuid_representation=UuidRepresentation.STANDARD,
)

RawClient = AsyncMongoClient[RawBSONDocument]
RawDatabase = AsyncDatabase[RawBSONDocument]
RawCollection = AsyncCollection[RawBSONDocument]

AUTH_FAILED_CODES = {18, 13}  # AuthenticationFailed, Unauthorized


def database_from_uri(uri: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        parsed = uri_parser.parse_uri(uri, validate=False, warn=True, connect_timeout=None)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise OpsError(f"invalid MongoDB URI: {exc}") from exc
    return str(parsed.get("database") or DEFAULT_DB_NAME)


async def connect(uri: str, *, role: str, timeout_ms: int = 5000) -> RawClient:
    """A raw-BSON client that has answered a ping; OpsError naming the host otherwise.

    Timeouts given in the URI win over `timeout_ms` (keyword options would override them)."""
    try:
        given = uri_parser.parse_uri(uri, validate=False, warn=True, connect_timeout=None)
        in_uri = {str(k).lower(): v for k, v in given.get("options", {}).items()}
        timeout_ms = int(in_uri.get("serverselectiontimeoutms", timeout_ms))
        options: dict[str, Any] = {
            "document_class": RawBSONDocument,
            "tz_aware": True,
            "uuidRepresentation": "standard",
            "appname": "paletai-db",
            "serverSelectionTimeoutMS": timeout_ms,
        }
        if "connecttimeoutms" not in in_uri:
            options["connectTimeoutMS"] = timeout_ms
        client: RawClient = AsyncMongoClient(uri, **options)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise OpsError(f"invalid {role} URI: {exc}") from exc
    hosts = describe_hosts(uri)
    try:
        await client.admin.command("ping")
    except ServerSelectionTimeoutError as exc:
        await client.close()
        raise OpsError(
            f"cannot reach the {role} MongoDB at {hosts} within {timeout_ms / 1000:g} s; "
            f"the driver said: {_first_line(exc)}"
        ) from exc
    except OperationFailure as exc:
        await client.close()
        if exc.code in AUTH_FAILED_CODES:
            raise OpsError(
                f"authentication failed on the {role} MongoDB at {hosts}: check the user, "
                f"password and authSource in the URI (server said: {exc.details or exc})"
            ) from exc
        raise OpsError(f"the {role} MongoDB at {hosts} refused ping: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any driver failure becomes one clear line
        await client.close()
        user = _uri_user(uri)
        during = f" while authenticating as {user!r}" if user else ""
        raise OpsError(
            f"the {role} MongoDB at {hosts} failed{during}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    return client


def _uri_user(uri: str) -> str | None:
    try:
        parsed = uri_parser.parse_uri(uri, validate=False, warn=True, connect_timeout=None)
    except (InvalidURI, ConfigurationError, ValueError):
        return None
    user = parsed.get("username")
    return str(user) if user else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.split(", Timeout:")[0].splitlines()[0] if text else type(exc).__name__


async def user_collections(db: RawDatabase) -> list[str]:
    """Collections to copy: not views, not system.*, not our checkpoints, not deployment state."""
    names: list[str] = []
    cursor = await db.list_collections()
    async for info in cursor:
        name = str(info["name"])
        kind = str(info.get("type", "collection"))
        if (
            name.startswith("system.")
            or name == SYNC_STATE_COLLECTION
            or name in DEPLOYMENT_STATE_COLLECTIONS
            or kind != "collection"
        ):
            continue
        names.append(name)
    return sorted(names)


async def require_collections(client: RawClient, db: RawDatabase, uri: str, role: str) -> list[str]:
    """The user collections of `db`; OpsError naming the databases that exist if it has none
    (a typo in --db or in the URI path must not give an empty backup or a vacuous verify)."""
    names = await user_collections(db)
    if not names:
        others = [
            n for n in await client.list_database_names() if n not in {"admin", "local", "config"}
        ]
        raise OpsError(
            f"the {role} database {db.name!r} at {describe_hosts(uri)} has no collections; "
            f"databases there: {', '.join(sorted(others)) or 'none'} (use --db NAME)"
        )
    return names


async def collection_info(db: RawDatabase, name: str) -> dict[str, Any]:
    """listCollections entry of one collection (options, type, uuid), decoded."""
    cursor = await db.list_collections(filter={"name": name})
    async for info in cursor:
        return bson.decode(info.raw) if isinstance(info, RawBSONDocument) else dict(info)
    return {"name": name, "type": "collection", "options": {}}


def collection_uuid_hex(info: Mapping[str, Any]) -> str:
    """The collection UUID as mongodump writes it (32 hex digits); a fresh one if unknown."""
    value = (info.get("info") or {}).get("uuid")
    if isinstance(value, uuid.UUID):
        text = value.hex
    elif isinstance(value, Binary):
        text = value.hex()
    elif isinstance(value, str):
        text = value.replace("-", "").lower()
    else:
        text = ""
    # A zero UUID is a placeholder, not an identity: a real server must never get it.
    if len(text) != 32 or set(text) == {"0"}:
        text = uuid.uuid4().hex
    return text


# ---------------------------------------------------------------------------------------------
# Indexes: compared and recreated by key, unique and TTL, never by name (names differ by server).

INDEX_SKIP_OPTIONS = {"v", "key", "ns", "background"}


@dataclass(frozen=True, order=True)
class IndexShape:
    key: tuple[tuple[str, str], ...]
    unique: bool
    ttl: float | None

    def describe(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self.key)
        extra = (" unique" if self.unique else "") + (
            f" TTL {self.ttl:g}s" if self.ttl is not None else ""
        )
        return "{" + fields + "}" + extra


def _direction(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return "1" if value >= 0 else "-1"
    return str(value)


def index_shape(spec: Mapping[str, Any]) -> IndexShape:
    key = tuple((str(k), _direction(v)) for k, v in dict(spec["key"]).items())
    ttl = spec.get("expireAfterSeconds")
    return IndexShape(
        key=key, unique=bool(spec.get("unique", False)), ttl=None if ttl is None else float(ttl)
    )


def is_id_index(spec: Mapping[str, Any]) -> bool:
    return list(dict(spec["key"]).keys()) == ["_id"]


async def index_specs(coll: RawCollection) -> list[dict[str, Any]]:
    """listIndexes, decoded to plain dicts."""
    specs: list[dict[str, Any]] = []
    cursor = await coll.list_indexes()
    async for spec in cursor:
        specs.append(bson.decode(spec.raw) if isinstance(spec, RawBSONDocument) else dict(spec))
    return specs


def _key_value(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


async def create_indexes(coll: RawCollection, specs: Iterable[Mapping[str, Any]]) -> int:
    """Create the secondary indexes of `specs` (dump metadata or listIndexes); returns how many."""
    created = 0
    for spec in specs:
        if is_id_index(spec):
            continue
        keys = [(str(k), _key_value(v)) for k, v in dict(spec["key"]).items()]
        options = {k: v for k, v in spec.items() if k not in INDEX_SKIP_OPTIONS}
        if "expireAfterSeconds" in options:
            options["expireAfterSeconds"] = int(options["expireAfterSeconds"])
        await coll.create_index(keys, **options)
        created += 1
    return created


# ---------------------------------------------------------------------------------------------
# _id values: a hashable key for any BSON value, and MongoDB's sort order for merging two scans.


def id_bytes(value: Any) -> bytes:
    """A stable, hashable key for any _id value (its BSON encoding)."""
    return bson.encode({"_id": value})


def raw_id(doc: RawBSONDocument) -> Any:
    return doc["_id"]


_FIXED_SIZES = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8}


def leading_id(doc: RawBSONDocument) -> Any:
    """The document's _id, read from its first element when it is there (as MongoDB stores
    it) without inflating the whole document; any other layout falls back to doc["_id"]."""
    raw = doc.raw
    if raw[5:9] == b"_id\x00":
        kind = raw[4]
        size = _FIXED_SIZES.get(kind)
        if size is None and kind == 0x02:
            size = 4 + int.from_bytes(raw[9:13], "little", signed=True)
        if size is not None:
            element = bytes(raw[4 : 9 + size])
            mini = (len(element) + 5).to_bytes(4, "little") + element + b"\x00"
            return bson.decode(mini, RAW_CODEC)["_id"]
    return doc["_id"]


_NUMBER_RANK = 3


def bson_sort_key(value: Any) -> tuple[Any, ...]:
    """MongoDB's cross-type comparison order, for the types an _id takes in practice."""
    if value is None:
        return (2,)
    if isinstance(value, bool):
        return (9, value)
    if isinstance(value, int | float):
        return (_NUMBER_RANK, float(value), 0 if isinstance(value, float) else 1)
    if isinstance(value, bson.Decimal128):
        return (_NUMBER_RANK, float(value.to_decimal()), 2)
    if isinstance(value, str):
        return (4, value)
    if isinstance(value, Mapping):
        return (5, bson.encode(dict(value)))
    if isinstance(value, list):
        return (6, bson.encode({"a": value}))
    if isinstance(value, uuid.UUID):
        return (7, 16, 4, value.bytes)
    if isinstance(value, Binary | bytes):
        subtype = value.subtype if isinstance(value, Binary) else 0
        return (7, len(value), subtype, bytes(value))
    if isinstance(value, ObjectId):
        return (8, value.binary)
    if isinstance(value, dt.datetime):
        return (10, value.timestamp())
    if isinstance(value, bson.Timestamp):
        return (11, value.time, value.inc)
    if isinstance(value, bson.MinKey):
        return (1,)
    if isinstance(value, bson.MaxKey):
        return (127,)
    return (12, id_bytes(value))
