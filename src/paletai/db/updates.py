"""Update helpers shared by the repositories."""

from __future__ import annotations

from typing import Any


def stamp(*fields: str) -> dict[str, Any]:
    """Set these fields to the server's current date.

    `$currentDate` rather than `$set` with a client datetime: it is the server's clock on every
    worker, and the embedded stand-in stores a `$set` datetime as a string (see
    docs/embedded-mongodb.md), while `$currentDate` round-trips on both.
    """
    return {"$currentDate": dict.fromkeys(fields, True)}
