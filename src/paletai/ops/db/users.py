"""`--include-users`: one database's users and roles, dumped and restored as mongodump
`--dumpDbUsersAndRoles` and mongorestore `--restoreDbUsersAndRoles` do (mongo-tools
mongodump/prepare.go, mongodump.go DumpUsersAndRolesForDB, mongorestore/metadata.go
RestoreUsersOrRoles)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
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
    """OpsError unless the server has authentication, hence users (connectionStatus answers
    `authInfo`, to any user, without privileges).

    A server without authentication (the embedded stand-in answers every command it does not
    know with `{ok: 1, result: []}`: usersInfo, rolesInfo, createUser included) has no users to
    back up or restore: saying "0 users" there would pretend."""
    answer: dict[str, Any] = await client.admin.command("connectionStatus", 1)
    if not isinstance(answer.get("authInfo"), dict):
        raise OpsError(
            f"--include-users: the {role} MongoDB at {describe_hosts(uri)} keeps no users: it "
            "answered connectionStatus without authInfo (keys: "
            f"{', '.join(sorted(answer)) or 'none'}), as a server without authentication "
            "does (the embedded stand-in); leave out --include-users"
        )


# The fields of an admin.system.users / admin.system.roles document, in the server's order.
_USER_FIELDS = (
    "_id",
    "userId",
    "user",
    "db",
    "credentials",
    "roles",
    "customData",
    "authenticationRestrictions",
)


def user_from_users_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """A `usersInfo` entry (showCredentials) in admin.system.users' shape, which is what
    mongorestore's `_mergeAuthzCollections` takes (usersInfo adds `mechanisms`)."""
    if "credentials" not in info:
        raise OpsError(
            f"--include-users: usersInfo gave no credentials for user {info.get('user')!r} "
            "(showCredentials refused); connect as a user with the backup role"
        )
    doc = {key: info[key] for key in _USER_FIELDS if key in info}
    doc.setdefault("_id", f"{info['db']}.{info['user']}")
    return {"_id": doc.pop("_id"), **doc}


def role_from_roles_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """A `rolesInfo` entry (showPrivileges) in admin.system.roles' shape: its own privileges
    and the roles it inherits from, not the inherited privileges rolesInfo adds."""
    doc: dict[str, Any] = {
        "_id": f"{info['db']}.{info['role']}",
        "role": info["role"],
        "db": info["db"],
        "privileges": list(info.get("privileges") or []),
        "roles": [{"role": r["role"], "db": r["db"]} for r in info.get("roles") or []],
    }
    if info.get("authenticationRestrictions"):
        doc["authenticationRestrictions"] = info["authenticationRestrictions"]
    return doc


async def _read_by_commands(
    client: RawClient, db_name: str, uri: str
) -> tuple[list[bytes], list[bytes]]:
    """Users and roles through usersInfo/rolesInfo, where the user may not read
    admin.system.users itself (needs viewUser/viewRole on the database)."""
    db = client[db_name]
    try:
        users = await db.command("usersInfo", 1, showCredentials=True, showCustomData=True)
        roles = await db.command("rolesInfo", 1, showPrivileges=True, showBuiltinRoles=False)
    except OperationFailure as exc:
        if exc.code in AUTH_FAILED_CODES:
            raise OpsError(
                f"--include-users: this user may neither read admin.system.users nor run "
                f"usersInfo on {db_name!r} at {describe_hosts(uri)}; connect as a user with the "
                "backup role, or leave out --include-users"
            ) from exc
        raise
    return (
        [bson.encode(user_from_users_info(u)) for u in users.get("users", [])],
        [bson.encode(role_from_roles_info(r)) for r in roles.get("roles", [])],
    )


async def read_users(client: RawClient, db_name: str, uri: str) -> dict[str, list[bytes]]:
    """The users and roles defined on `db_name` and the auth schema version, as mongodump
    reads them (admin.system.users/roles by `db`, admin.system.version); through
    usersInfo/rolesInfo when the user may not read those collections. File stem -> documents."""
    admin = client.get_database("admin", codec_options=RAW_CODEC)
    found: dict[str, list[bytes]] = {}
    try:
        for collection, stem, query in (
            ("system.users", USERS_FILE, {"db": db_name}),
            ("system.roles", ROLES_FILE, {"db": db_name}),
            ("system.version", AUTH_VERSION_FILE, {}),
        ):
            found[stem] = [bytes(doc.raw) async for doc in admin[collection].find(query)]
    except OperationFailure as exc:
        if exc.code not in AUTH_FAILED_CODES:
            raise
        users, roles = await _read_by_commands(client, db_name, uri)
        found = {USERS_FILE: users, ROLES_FILE: roles, AUTH_VERSION_FILE: []}
    return found


async def dump_users(
    client: RawClient, db_name: str, db_dir: Path, *, compress: bool, uri: str
) -> UsersCount:
    """Write the users and roles of `db_name` into the database's folder as mongodump
    --dumpDbUsersAndRoles names them; how many of each."""
    found = await read_users(client, db_name, uri)
    for stem, docs in found.items():
        with open_write(db_dir / f"{stem}{BSON_SUFFIX}", compress=compress) as out:
            out.write(b"".join(docs))
    return UsersCount(users=len(found[USERS_FILE]), roles=len(found[ROLES_FILE]))


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
