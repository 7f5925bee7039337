"""The MongoDB client: one AsyncMongoClient per process, owned by the app's lifespan."""

from __future__ import annotations

import logging
import time
from typing import Any

from pymongo import AsyncMongoClient, monitoring, uri_parser
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger(__name__)

DEFAULT_DB_NAME = "paletai"

# The app's driver timeouts: in an outage a request answers 503 in about 1 s instead of waiting
# for the driver's default of 30 s. Connecting gets a little more: it is also the heartbeat's
# timeout, and a loaded machine must not read as an outage.
APP_SERVER_SELECTION_TIMEOUT_MS = 1000
APP_CONNECT_TIMEOUT_MS = 1500

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


class OutageLog(monitoring.TopologyListener):
    """One log line when the database becomes unreachable, and one when it is back.

    Fed by the driver's topology events (pass it in `event_listeners`), so a request or a worker
    poll that fails during the outage needs to log nothing itself.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self._was_up = False
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def opened(self, event: monitoring.TopologyOpenedEvent) -> None:
        pass

    def closed(self, event: monitoring.TopologyClosedEvent) -> None:
        pass

    def description_changed(self, event: monitoring.TopologyDescriptionChangedEvent) -> None:
        new = event.new_description
        if not new.server_descriptions():
            return  # the client is closing: no servers left to watch
        if new.has_writable_server():
            if self._down_since is not None:
                log.warning(
                    "database at %s reachable again after %.1f s",
                    self.where,
                    time.monotonic() - self._down_since,
                )
                self._down_since = None
            self._was_up = True
        elif self._was_up and self._down_since is None:
            # Start-up failures are reported by the start-up itself; this is a lost database.
            self._down_since = time.monotonic()
            errors = [str(sd.error) for sd in new.server_descriptions().values() if sd.error]
            reason = errors[0].splitlines()[0][:200] if errors else "no writable server"
            log.warning(
                "database at %s unreachable (%s): answering 503 database_unavailable until it "
                "is back",
                self.where,
                reason,
            )
