"""Password hashing (argon2) and access tokens (JWT, HS256)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so timing does not reveal it.
_DUMMY_HASH = _hasher.hash("paletai-dummy-password")
ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: a missing user still costs one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def create_access_token(subject: str, secret: str, expires_minutes: int) -> tuple[str, int]:
    now = dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(minutes=expires_minutes)
    payload: dict[str, Any] = {"sub": subject, "iat": now, "exp": expires, "typ": "access"}
    return jwt.encode(payload, secret, algorithm=ALGORITHM), expires_minutes * 60


def decode_access_token(token: str, secret: str) -> str | None:
    """The user id in a valid, unexpired token; None otherwise."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    if payload.get("typ") != "access":
        return None
    sub = payload.get("sub")
    return sub if isinstance(sub, str) else None
