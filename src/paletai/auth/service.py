"""Registration and login rules."""

from __future__ import annotations

import contextlib
import secrets

import anyio

from paletai.auth.throttle import LoginThrottle, RegistrationThrottle
from paletai.core.context import AppContext
from paletai.core.errors import Conflict, ServiceUnavailable, Unauthorized
from paletai.core.security import create_access_token, needs_rehash
from paletai.users.repository import EmailTaken, UsernameTaken, UsersRepository
from paletai.users.schemas import UserInDB

EMAIL_TAKEN = "an account with this email already exists; log in instead"


def username_taken(username: str) -> Conflict:
    return Conflict(
        f"the username {username!r} is taken (names are compared ignoring case); choose another"
    )


def default_username(email: str) -> str:
    local = "".join(ch for ch in email.split("@", 1)[0] if ch.isalnum() or ch in "_.-")
    return (local or "player")[:32].ljust(3, "_")


async def register(
    ctx: AppContext, email: str, password: str, username: str | None, client_ip: str
) -> UserInDB:
    await RegistrationThrottle(ctx.db, ctx.settings, ctx.refusals).admit(client_ip)
    repo = UsersRepository(ctx.db)
    # The cheap refusals first: no argon2 work for a request that cannot succeed.
    if await repo.email_taken(email):
        raise Conflict(EMAIL_TAKEN)
    if username is not None and await repo.username_taken(username):
        raise username_taken(username)
    password_hash = await ctx.passwords.hash(password)
    # A name derived from the email may be taken by someone else: add a suffix then, rather
    # than refusing a user who never chose a name.
    candidates = (
        [username]
        if username is not None
        else [default_username(email)]
        + [f"{default_username(email)[:27]}-{secrets.randbelow(10_000):04d}" for _ in range(5)]
    )
    for candidate in candidates:
        try:
            return await repo.create(email, candidate, password_hash)
        except EmailTaken:
            raise Conflict(EMAIL_TAKEN) from None
        except UsernameTaken:
            continue
    raise username_taken(candidates[0])


async def authenticate(ctx: AppContext, email: str, password: str, client_ip: str) -> UserInDB:
    throttle = LoginThrottle(ctx.db, ctx.settings, ctx.refusals)
    attempt = await throttle.begin(email, client_ip)
    if attempt.delay:
        # Many failures for this account from elsewhere: slow down, never refuse the owner.
        await anyio.sleep(attempt.delay)
    repo = UsersRepository(ctx.db)
    user = await repo.get_by_email(email)
    stored = user.password_hash if user else None
    ok = await ctx.passwords.verify(password, stored, priority=attempt.known)
    stripped_legacy = False
    if not ok and user and password != password.strip() and needs_rehash(user.password_hash):
        # Accounts from before passwords were kept as typed have the stripped one stored.
        ok = stripped_legacy = await ctx.passwords.verify(
            password.strip(), user.password_hash, priority=attempt.known
        )
    if not ok or user is None:
        raise Unauthorized("wrong email or password")
    await throttle.succeeded(attempt, email, client_ip)
    if needs_rehash(user.password_hash) and not stripped_legacy:
        # Made with older, heavier argon2 parameters: replace it now that we know the password
        # (best effort: when every hashing slot is busy, the next login does it).
        with contextlib.suppress(ServiceUnavailable):
            await repo.set_password_hash(user.id, await ctx.passwords.hash(password))
    return user


def issue_token(user: UserInDB, ctx: AppContext) -> tuple[str, int]:
    return create_access_token(user.id, ctx.jwt_secret, ctx.settings.JWT_EXPIRE_MINUTES)
