"""The MongoDB client: one AsyncMongoClient per process, owned by the app's lifespan."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient, uri_parser
from pymongo.asynchronous.database import AsyncDatabase

DEFAULT_DB_NAME = "paletai"

Document = dict[str, Any]
Database = AsyncDatabase[Document]
Client = AsyncMongoClient[Document]


def database_name(uri: str, explicit: str | None = None) -> str:
    """The database to use: explicit setting, else the URI's path, else `paletai`."""
    if explicit:
        return explicit
    parsed = uri_parser.parse_uri(uri, validate=False, warn=True, connect_timeout=None)
    return parsed.get("database") or DEFAULT_DB_NAME


def make_client(uri: str, *, app_name: str = "paletai", **kwargs: Any) -> Client:
    """An async client with timeouts that fail fast enough for a health check to answer."""
    options: dict[str, Any] = {
        "appname": app_name,
        "serverSelectionTimeoutMS": 5000,
        "connectTimeoutMS": 5000,
        "tz_aware": True,
        "uuidRepresentation": "standard",
    }
    options.update(kwargs)
    return AsyncMongoClient(uri, **options)


def describe_hosts(uri: str) -> str:
    """Host list of a URI without credentials, for error messages."""
    try:
        parsed = uri_parser.parse_uri(uri, validate=False, warn=True, connect_timeout=None)
    except Exception:  # noqa: BLE001 - only used for a message
        return "<unparseable URI>"
    return ",".join(f"{h}:{p}" for h, p in parsed.get("nodelist", [])) or parsed.get("fqdn") or "?"
