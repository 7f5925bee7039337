"""Namespace patterns as mongodump/mongorestore take them: `db.coll`, `*` and `$name$` wildcards.

--ns-include / --ns-exclude choose namespaces, --ns-from / --ns-to rename them (restore); backup
takes --ns-exclude with the same patterns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from paletai.ops.errors import OpsError

_WILDCARD = r"\*|\$[A-Za-z_][A-Za-z0-9_]*\$"


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A namespace pattern as a regex: `*` and `$name$` match any run of characters."""
    parts = re.split(f"({_WILDCARD})", pattern)
    regex = "".join(
        "(.*)"
        if p == "*" or (p.startswith("$") and p.endswith("$") and len(p) > 1)
        else re.escape(p)
        for p in parts
    )
    return re.compile(f"^{regex}$")


def check_patterns(option: str, patterns: Sequence[str]) -> list[re.Pattern[str]]:
    """The compiled patterns of a namespace option; OpsError for one that is not `db.coll`."""
    for pattern in patterns:
        db, sep, coll = pattern.partition(".")
        if not sep or not db or not coll:
            raise OpsError(
                f"{option} {pattern!r} is not a namespace pattern: write <database>.<collection> "
                f"with * wildcards, e.g. {option} 'paletai.tmp_*'"
            )
    return [pattern_regex(p) for p in patterns]


class NamespaceMapper:
    """--ns-include, --ns-exclude and --ns-from/--ns-to, as mongorestore's --nsInclude,
    --nsExclude and --nsFrom/--nsTo (include and exclude match the dump's namespaces,
    before any rename)."""

    def __init__(
        self,
        include: Sequence[str] = (),
        ns_from: Sequence[str] = (),
        ns_to: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        if len(ns_from) != len(ns_to):
            raise OpsError("--ns-from and --ns-to must be given in pairs")
        self.include = [pattern_regex(p) for p in include]
        self.exclude = check_patterns("--ns-exclude", exclude)
        self.renames: list[tuple[re.Pattern[str], list[str]]] = []
        for src, dst in zip(ns_from, ns_to, strict=True):
            regex = pattern_regex(src)
            holes = re.split(_WILDCARD, dst)
            if len(holes) - 1 != regex.groups:
                raise OpsError(f"--ns-to {dst!r} must have as many wildcards as --ns-from {src!r}")
            self.renames.append((regex, holes))

    @property
    def renames_any(self) -> bool:
        return bool(self.renames)

    def map(self, namespace: str) -> str | None:
        """The target namespace, or None when the namespace is not included (or excluded)."""
        if self.include and not any(p.match(namespace) for p in self.include):
            return None
        if any(p.match(namespace) for p in self.exclude):
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
