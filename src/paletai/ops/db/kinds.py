"""Every collection kind and its options, for backup, restore, sync and verify.

A collection is what `listCollections` says it is: a `type` (`collection`, `view`, `timeseries`)
and `options` (capped/size/max, validator/validationLevel/validationAction, collation,
viewOn/pipeline, timeseries, expireAfterSeconds, clusteredIndex, ...). `create` takes those options
as they are, so a collection is recreated by `{"create": name, **options}`. Whether the target kept
them is read back from its own `listCollections`, never assumed: a server that accepts `create` and
ignores its options (the embedded stand-in does) must fail loudly, naming the collection.

Indexes are compared option by option (partial filter, sparse, collation, hidden, text weights and
language, 2dsphere version, TTL, unique) on top of the key/unique/TTL shape in `common.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import bson
from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo.errors import OperationFailure

from paletai.ops.db.common import (
    DEPLOYMENT_STATE_COLLECTIONS,
    SYNC_STATE_COLLECTION,
    RawDatabase,
    index_shape,
    is_id_index,
)
from paletai.ops.db.dumpfmt import BUCKETS_PREFIX
from paletai.ops.errors import OpsError

KIND_COLLECTION = "collection"
KIND_VIEW = "view"
KIND_TIMESERIES = "timeseries"
NAMESPACE_EXISTS = 48

# Time-series bucketing the server derives from `granularity`: `create` refuses them next to a
# granularity that does not give them, and servers of different versions report different ones.
_DERIVED_TIMESERIES = ("bucketMaxSpanSeconds", "bucketRoundingSeconds")
# Reported by one server version and not another, for the same definition.
_VERSION_DEPENDENT = (("timeseries", "bucketRoundingSeconds"), ("collation", "version"))
# Index fields that are not options: the key is the shape, names differ by server.
_INDEX_NOT_OPTIONS = frozenset({"v", "key", "ns", "name", "background"})
# Index options whose absence means `false`.
_INDEX_FALSE_DEFAULTS = ("unique", "sparse", "hidden")


def _kind_label(kind: str) -> str:
    return {KIND_VIEW: "view", KIND_TIMESERIES: "time-series collection"}.get(kind, "collection")


def skipped_name(name: str) -> bool:
    """Not user data: system.* (time-series buckets included), our checkpoints, deployment state."""
    return (
        name.startswith("system.")
        or name == SYNC_STATE_COLLECTION
        or name in DEPLOYMENT_STATE_COLLECTIONS
    )


@dataclass(frozen=True)
class CollectionSpec:
    """One collection's definition: its name, kind and options, as listCollections gives them."""

    name: str
    kind: str = KIND_COLLECTION
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> CollectionSpec:
        decoded = bson.decode(info.raw) if isinstance(info, RawBSONDocument) else dict(info)
        return cls(
            name=str(decoded["name"]),
            kind=str(decoded.get("type") or KIND_COLLECTION),
            options=dict(decoded.get("options") or {}),
        )

    @property
    def data_collection(self) -> str | None:
        """Where its documents are read and written: none for a view, a time-series' buckets."""
        if self.kind == KIND_VIEW:
            return None
        if self.kind == KIND_TIMESERIES:
            return BUCKETS_PREFIX + self.name
        return self.name

    def describe(self) -> str:
        return f"{_kind_label(self.kind)} {self.name!r}"


async def collection_specs(db: RawDatabase) -> dict[str, CollectionSpec]:
    """Every user collection of `db`, views and time-series included, by name."""
    specs: dict[str, CollectionSpec] = {}
    cursor = await db.list_collections()
    async for info in cursor:
        spec = CollectionSpec.from_info(info)
        if not skipped_name(spec.name):
            specs[spec.name] = spec
    return dict(sorted(specs.items()))


async def collection_spec(db: RawDatabase, name: str) -> CollectionSpec | None:
    """One collection's definition, or None when it does not exist."""
    cursor = await db.list_collections(filter={"name": name})
    async for info in cursor:
        spec = CollectionSpec.from_info(info)
        # Checked here too: a server that ignores the filter must not lend us another's options.
        if spec.name == name:
            return spec
    return None


def create_command(spec: CollectionSpec) -> dict[str, Any]:
    """The `create` command that makes a collection like `spec` (views and time-series too)."""
    options = {k: v for k, v in spec.options.items() if k != "create"}
    timeseries = options.get("timeseries")
    if isinstance(timeseries, Mapping) and "granularity" in timeseries:
        options["timeseries"] = {
            k: v for k, v in timeseries.items() if k not in _DERIVED_TIMESERIES
        }
    if spec.kind == KIND_VIEW and "viewOn" not in options:
        raise OpsError(
            f"view {spec.name!r} has no viewOn in its definition; is the metadata whole?"
        )
    if spec.kind == KIND_TIMESERIES and "timeseries" not in options:
        raise OpsError(f"time-series collection {spec.name!r} has no timeseries option")
    return {"create": spec.name, **options}


def _plain(value: Any) -> Any:
    """A value with numbers compared by value (int32, Int64 and double alike) and maps unordered."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _covers(got: Any, wanted: Any) -> bool:
    """Whether the server's value holds what was asked (it may add defaults to a sub-document)."""
    if isinstance(wanted, Mapping) and isinstance(got, Mapping):
        return all(k in got and _covers(got[k], v) for k, v in wanted.items())
    return bool(_plain(got) == _plain(wanted))


def options_not_kept(wanted: CollectionSpec, got: CollectionSpec) -> list[str]:
    """What of `wanted` the created collection `got` does not have: its kind, or option names."""
    if got.kind != wanted.kind:
        return [f"type {wanted.kind}"]
    asked = {k: v for k, v in create_command(wanted).items() if k != "create"}
    return [k for k, v in asked.items() if k not in got.options or not _covers(got.options[k], v)]


def show(value: Any) -> str:
    """A value in relaxed Extended JSON, short enough for one line."""
    text = json_util.dumps(value, json_options=json_util.RELAXED_JSON_OPTIONS)
    return text if len(text) <= 160 else text[:157] + "..."


class KindNotKept(OpsError):
    """The target cannot hold a collection's kind or options (it created something else)."""

    exit_code = 1


async def ensure_collection(db: RawDatabase, spec: CollectionSpec) -> bool:
    """Create `spec` on `db` unless it exists, then check the target really has its kind and
    options. Returns whether it was created; KindNotKept naming the collection otherwise.

    A view or time-series collection the target turned into a plain one is dropped again (when
    this call created it), so nothing half-made is left behind under that name."""
    namespace = f"{db.name}.{spec.name}"
    existing = await collection_spec(db, spec.name)
    created = existing is None
    if created:
        try:
            await db.command(create_command(spec))
        except OperationFailure as exc:
            if exc.code != NAMESPACE_EXISTS:  # a concurrent create is fine; anything else is not
                raise KindNotKept(
                    f"the target refused to create {_kind_label(spec.kind)} {namespace}: "
                    f"{str(exc).splitlines()[0][:200]}"
                ) from exc
            created = False
        existing = await collection_spec(db, spec.name)
    if existing is None:
        raise KindNotKept(f"the target did not create {_kind_label(spec.kind)} {namespace}")
    lost = options_not_kept(spec, existing)
    if not lost:
        return created
    if existing.kind != spec.kind:
        if created:
            await db.drop_collection(spec.name)
            raise KindNotKept(
                f"the target cannot hold {_kind_label(spec.kind)} {namespace}: it made a "
                f"{_kind_label(existing.kind)} instead (dropped again); restore it on a "
                "MongoDB that supports it"
            )
        raise KindNotKept(
            f"{namespace} exists on the target as a {_kind_label(existing.kind)}, not a "
            f"{_kind_label(spec.kind)}; drop it first (--drop)"
        )
    if created:
        raise KindNotKept(
            f"the target created {namespace} without its options {', '.join(lost)} "
            f"(asked: {show({k: spec.options.get(k) for k in lost})}); it cannot hold them"
        )
    raise KindNotKept(
        f"{namespace} exists on the target without the source's options {', '.join(lost)}; "
        "drop it first (--drop) so it is created with them"
    )


# ---------------------------------------------------------------------------------------------
# Comparing two definitions: one line per difference, naming the option.


def _comparable(options: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _plain(v) for k, v in options.items()}
    for top, sub in _VERSION_DEPENDENT:
        mine, theirs = out.get(top), other.get(top)
        if (
            isinstance(mine, dict)
            and sub in mine
            and not (isinstance(theirs, Mapping) and sub in theirs)
        ):
            mine.pop(sub)
    return out


def compare_options(source: CollectionSpec, target: CollectionSpec) -> list[str]:
    """The differences between two collections' definitions, one line each (empty: the same)."""
    if source.kind != target.kind:
        return [f"type: source {source.kind}, target {target.kind}"]
    src = _comparable(source.options, target.options)
    tgt = _comparable(target.options, source.options)
    lines = []
    for key in sorted(set(src) | set(tgt)):
        if src.get(key, _ABSENT) != tgt.get(key, _ABSENT):
            lines.append(
                f"option {key}: source {_shown(src.get(key, _ABSENT))}, "
                f"target {_shown(tgt.get(key, _ABSENT))}"
            )
    return lines


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def _shown(value: Any) -> str:
    return "absent" if value is _ABSENT else show(value)


def index_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An index's options (all but key, name, v, ns), numbers by value, `false` defaults dropped."""
    out = {str(k): _plain(v) for k, v in spec.items() if k not in _INDEX_NOT_OPTIONS}
    for name in _INDEX_FALSE_DEFAULTS:
        if out.get(name) is False:
            out.pop(name)
    return out


def compare_index_options(
    source: Iterable[Mapping[str, Any]], target: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Option differences between indexes of the same key/unique/TTL shape, one line each.

    Indexes whose shape exists on one side only are the caller's (missing/extra in target);
    here, same-shape indexes are paired (identical ones first) and every differing option is
    named, e.g. `index {x: 1}: option partialFilterExpression: source {...}, target absent`."""
    by_shape: dict[Any, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    for side, specs in ((0, source), (1, target)):
        for spec in specs:
            if not is_id_index(spec):
                by_shape.setdefault(index_shape(spec), ([], []))[side].append(index_options(spec))
    lines: list[str] = []
    for shape, (src, tgt) in sorted(by_shape.items()):
        if not src or not tgt:
            continue
        src_left = list(src)
        tgt_left = []
        for options in tgt:
            if options in src_left:
                src_left.remove(options)
            else:
                tgt_left.append(options)
        label = f"index {shape.describe()}"
        for a, b in zip(src_left, tgt_left, strict=False):
            for key in sorted(set(a) | set(b)):
                if a.get(key, _ABSENT) != b.get(key, _ABSENT):
                    lines.append(
                        f"{label}: option {key}: source {_shown(a.get(key, _ABSENT))}, "
                        f"target {_shown(b.get(key, _ABSENT))}"
                    )
        for options in src_left[len(tgt_left) :]:
            lines.append(f"{label} {show(options)}: missing in target")
        for options in tgt_left[len(src_left) :]:
            lines.append(f"{label} {show(options)}: extra in target")
    return lines


async def prepare_views(source: RawDatabase, target: RawDatabase) -> list[CollectionSpec]:
    """For `db sync`: create the source's views on the target (a view holds no documents to
    copy), and refuse time-series collections, which MongoDB gives no change stream on."""
    specs = await collection_specs(source)
    series = [s.name for s in specs.values() if s.kind == KIND_TIMESERIES]
    if series:
        raise KindNotKept(
            f"db sync cannot follow the time-series collection(s) {', '.join(series)} of "
            f"{source.name!r} (MongoDB opens no change stream on them): move them with "
            "db backup and db restore"
        )
    views = [s for s in specs.values() if s.kind == KIND_VIEW]
    for view in views:
        await ensure_collection(target, view)
    return views
