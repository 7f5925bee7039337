"""Registration and login rules."""

from __future__ import annotations

import anyio

from paletai.auth.throttle import LoginThrottle
from paletai.config import Settings
from paletai.core.errors import Conflict, Unauthorized
from paletai.core.security import create_access_token, hash_password, verify_password
from paletai.db.client import Database
from paletai.users.repository import EmailTaken, UsersRepository
from paletai.users.schemas import UserInDB


def default_username(email: str) -> str:
    local = "".join(ch for ch in email.split("@", 1)[0] if ch.isalnum() or ch in "_.-")
    return (local or "player")[:32].ljust(3, "_")


async def register(db: Database, email: str, password: str, username: str | None) -> UserInDB:
    # argon2 is CPU work: off the event loop, so one registration does not stall the others.
    password_hash = await anyio.to_thread.run_sync(hash_password, password)
    try:
        return await UsersRepository(db).create(
            email, username or default_username(email), password_hash
        )
    except EmailTaken:
        raise Conflict("an account with this email already exists; log in instead") from None


async def authenticate(
    db: Database, settings: Settings, email: str, password: str, client_ip: str
) -> UserInDB:
    throttle = LoginThrottle(db, settings)
    await throttle.check(email, client_ip)
    user = await UsersRepository(db).get_by_email(email)
    ok = await anyio.to_thread.run_sync(
        verify_password, password, user.password_hash if user else None
    )
    if not ok or user is None:
        await throttle.record_failure(email, client_ip)
        raise Unauthorized("wrong email or password")
    await throttle.clear(email)
    return user


def issue_token(user: UserInDB, secret: str, settings: Settings) -> tuple[str, int]:
    return create_access_token(user.id, secret, settings.JWT_EXPIRE_MINUTES)
