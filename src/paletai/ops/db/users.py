"""`--include-users`: one database's users and roles, dumped and restored as mongodump
`--dumpDbUsersAndRoles` and mongorestore `--restoreDbUsersAndRoles` do (mongo-tools
mongodump/prepare.go, mongodump.go DumpUsersAndRolesForDB, mongorestore/metadata.go
RestoreUsersOrRoles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo.errors import OperationFailure

from paletai.db.client import describe_hosts
from paletai.ops.db.common import AUTH_FAILED_CODES, RAW_CODEC, RawClient
from paletai.ops.db.dumpfmt import (
    AUTH_VERSION_FILE,
    BSON_SUFFIX,
    ROLES_FILE,
    USERS_FILE,
    DumpedAuth,
    open_write,
    read_raw_documents,
)
from paletai.ops.errors import OpsError

# mongorestore's --tempUsersColl / --tempRolesColl defaults, in the admin database.
TEMP_USERS = "tempusers"
TEMP_ROLES = "temproles"


@dataclass
class UsersCount:
    users: int = 0
    roles: int = 0


async def require_users(client: RawClient, uri: str, role: str) -> None:
    """OpsError unless the server keeps users we can read (usersInfo answers a `users` list).

    A server without authentication (the embedded stand-in answers every command it does not
    know with `{ok: 1, result: []}`, createUser included) has no users to back up or restore:
    saying "0 users" there would pretend."""
    hosts = describe_hosts(uri)
    try:
        answer: dict[str, Any] = await client.admin.command("usersInfo", 1)
    except OperationFailure as exc:
        if exc.code in AUTH_FAILED_CODES:
            raise OpsError(
                f"--include-users: the {role} MongoDB at {hosts} does not let this user list "
                "users (usersInfo: not authorized); connect as a user with the backup (or "
                "restore) role, or leave out --include-users"
            ) from exc
        raise OpsError(
            f"--include-users: the {role} MongoDB at {hosts} refused usersInfo: {exc}"
        ) from exc
    if not isinstance(answer.get("users"), list):
        raise OpsError(
            f"--include-users: the {role} MongoDB at {hosts} keeps no users: it answered "
            f"usersInfo without a users list (keys: {', '.join(sorted(answer)) or 'none'}), "
            "as a server without authentication does (the embedded stand-in); leave out "
            "--include-users"
        )


async def dump_users(
    client: RawClient, db_name: str, db_dir: Path, *, compress: bool, uri: str
) -> UsersCount:
    """Write the users and roles defined on `db_name` (and the auth schema version) into the
    database's folder, as mongodump does: read from admin.system.users/roles by `db`."""
    admin = client.get_database("admin", codec_options=RAW_CODEC)
    count = UsersCount()
    for collection, stem, query in (
        ("system.users", USERS_FILE, {"db": db_name}),
        ("system.roles", ROLES_FILE, {"db": db_name}),
        ("system.version", AUTH_VERSION_FILE, {}),
    ):
        try:
            docs = [bytes(doc.raw) async for doc in admin[collection].find(query)]
        except OperationFailure as exc:
            if exc.code in AUTH_FAILED_CODES:
                raise OpsError(
                    f"--include-users: this user may not read admin.{collection} on "
                    f"{describe_hosts(uri)}; connect as a user with the backup role, or "
                    "leave out --include-users"
                ) from exc
            raise
        with open_write(db_dir / f"{stem}{BSON_SUFFIX}", compress=compress) as out:
            out.write(b"".join(docs))
        if stem == USERS_FILE:
            count.users = len(docs)
        elif stem == ROLES_FILE:
            count.roles = len(docs)
    return count


def count_dumped(auth: DumpedAuth) -> UsersCount:
    return UsersCount(
        users=sum(1 for _ in read_raw_documents(auth.users)) if auth.users else 0,
        roles=sum(1 for _ in read_raw_documents(auth.roles)) if auth.roles else 0,
    )


async def restore_users(
    client: RawClient, auth: DumpedAuth, target_db: str, *, drop: bool
) -> UsersCount:
    """Load the dumped users/roles into temporary admin collections and merge them with
    `_mergeAuthzCollections`, as mongorestore does (direct writes to admin.system.users are
    refused by the server); `drop` replaces the database's users and roles instead of adding."""
    admin = client.get_database("admin", codec_options=RAW_CODEC)
    count = UsersCount()
    merge: dict[str, Any] = {}
    temps: list[str] = []
    try:
        for path, temp, key in (
            (auth.users, TEMP_USERS, "tempUsersCollection"),
            (auth.roles, TEMP_ROLES, "tempRolesCollection"),
        ):
            if path is None:
                continue
            docs: list[RawBSONDocument] = list(read_raw_documents(path))
            await admin.drop_collection(temp)
            temps.append(temp)
            await admin.create_collection(temp)
            if docs:
                await admin[temp].insert_many(docs)
            merge[key] = f"admin.{temp}"
            if temp == TEMP_USERS:
                count.users = len(docs)
            else:
                count.roles = len(docs)
        # An empty `db` means every database: mongorestore sends it when restoring admin.
        command = {
            "_mergeAuthzCollections": 1,
            **merge,
            "drop": drop,
            "db": "" if target_db == "admin" else target_db,
        }
        await admin.command(command)
    finally:
        for temp in temps:
            await admin.drop_collection(temp)
    return count
