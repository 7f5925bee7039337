"""Users and roles as MongoDB keeps them (what `db backup/restore --include-users` reads)."""

from __future__ import annotations

import os

import pytest

from paletai.db.client import Database

STAND_IN = not os.environ.get("PALETAI_TEST_MONGODB_URI")


@pytest.mark.xfail(
    STAND_IN,
    strict=True,
    reason="nx-27017 0.8.1 has no users: it answers usersInfo, rolesInfo and createUser (any "
    "command it does not know) with {ok: 1, result: []} and keeps nothing "
    "(docs/embedded-mongodb.md)",
)
async def test_a_created_user_is_listed_by_users_info(db: Database) -> None:
    await db.command("createUser", "conformance_bob", pwd="not-a-real-secret-1", roles=[])
    try:
        answer = await db.command("usersInfo", 1)
        assert [u["user"] for u in answer["users"]] == ["conformance_bob"]
        roles = await db.command("rolesInfo", 1)
        assert roles["roles"] == []
    finally:
        await db.command("dropAllUsersFromDatabase", 1)


@pytest.mark.xfail(
    STAND_IN,
    strict=True,
    reason="nx-27017 0.8.1 has no authentication: connectionStatus answers {ok: 1, result: []} "
    "(docs/embedded-mongodb.md)",
)
async def test_connection_status_answers_auth_info(db: Database) -> None:
    """`db backup/restore --include-users` asks this (any user may) to tell a server with
    users from one without."""
    answer = await db.client.admin.command("connectionStatus", 1)
    assert isinstance(answer["authInfo"]["authenticatedUsers"], list)
