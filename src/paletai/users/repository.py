from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, OperationFailure

from paletai.core.timeutil import as_utc, utcnow
from paletai.db.client import Database
from paletai.db.ids import new_id
from paletai.users.schemas import UserInDB

log = logging.getLogger(__name__)

USERNAME_INDEX = IndexModel([("username_lower", ASCENDING)], unique=True, name="username_unique")


class EmailTaken(Exception):
    pass


class UsernameTaken(Exception):
    pass


def _to_model(doc: dict[str, Any]) -> UserInDB:
    return UserInDB(
        id=doc["_id"],
        email=doc["email"],
        username=doc["username"],
        password_hash=doc["password_hash"],
        created_at=as_utc(doc["created_at"]),
    )


class UsersRepository:
    def __init__(self, db: Database) -> None:
        self.collection = db["users"]

    async def create(self, email: str, username: str, password_hash: str) -> UserInDB:
        doc = {
            "_id": new_id(),
            "email": email.lower(),
            "username": username,
            # Uniqueness is case-insensitive: "Admin" and "admin" are one name.
            "username_lower": username.lower(),
            "password_hash": password_hash,
            "created_at": utcnow(),
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            # Which unique index refused it: asked of the data, since index names and error
            # details differ between MongoDB flavours.
            if await self.get_by_email(email) is not None:
                raise EmailTaken(email) from None
            raise UsernameTaken(username) from None
        return _to_model(doc)

    async def email_taken(self, email: str) -> bool:
        return await self.collection.find_one({"email": email.lower()}, {"_id": 1}) is not None

    async def username_taken(self, username: str) -> bool:
        query = {"username_lower": username.lower()}
        return await self.collection.find_one(query, {"_id": 1}) is not None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.collection.update_one(
            {"_id": user_id}, {"$set": {"password_hash": password_hash}}
        )

    async def delete(self, user_id: str) -> bool:
        result = await self.collection.delete_one({"_id": user_id})
        return result.deleted_count == 1

    async def ensure_unique_usernames(self) -> list[str]:
        """Fill `username_lower` where it is missing and create its unique index.

        Existing case-insensitive duplicates must not stop start-up: they are logged, returned,
        and the index is left out (registration still checks before inserting) until they are
        renamed.
        """
        missing = self.collection.find({"username_lower": {"$exists": False}}, {"username": 1})
        async for doc in missing:
            await self.collection.update_one(
                {"_id": doc["_id"]}, {"$set": {"username_lower": str(doc["username"]).lower()}}
            )
        try:
            await self.collection.create_indexes([USERNAME_INDEX])
            return []
        except OperationFailure:
            collisions = await self.colliding_usernames()
            if not collisions:
                raise
        log.warning(
            "usernames that differ only in case (%d): %s; the unique index on username_lower "
            "is not created until they are renamed",
            len(collisions),
            ", ".join(collisions[:50]),
        )
        return collisions

    async def colliding_usernames(self) -> list[str]:
        pipeline: list[dict[str, Any]] = [
            {"$group": {"_id": "$username_lower", "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
        ]
        docs = await (await self.collection.aggregate(pipeline)).to_list()
        return sorted(str(d["_id"]) for d in docs)

    async def get_by_email(self, email: str) -> UserInDB | None:
        doc = await self.collection.find_one({"email": email.lower()})
        return _to_model(doc) if doc else None

    async def get(self, user_id: str) -> UserInDB | None:
        doc = await self.collection.find_one({"_id": user_id})
        return _to_model(doc) if doc else None

    async def count(self) -> int:
        return await self.collection.count_documents({})
