"""Ids are strings everywhere (API and references); `_id`s are ObjectId hex strings.

References between collections are stored as strings: the embedded stand-in does not match
ObjectId values outside `_id`, and a string id makes a malformed id simply "not found".
"""

from __future__ import annotations

import re

from bson import ObjectId

_ID = re.compile(r"^[0-9a-f]{24}$")


def new_id() -> str:
    return str(ObjectId())


def is_valid_id(value: str) -> bool:
    return bool(_ID.match(value))
