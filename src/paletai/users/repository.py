from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from paletai.core.timeutil import as_utc, utcnow
from paletai.db.client import Database
from paletai.db.ids import new_id
from paletai.users.schemas import UserInDB


class EmailTaken(Exception):
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
            "password_hash": password_hash,
            "created_at": utcnow(),
        }
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            raise EmailTaken(email) from None
        return _to_model(doc)

    async def get_by_email(self, email: str) -> UserInDB | None:
        doc = await self.collection.find_one({"email": email.lower()})
        return _to_model(doc) if doc else None

    async def get(self, user_id: str) -> UserInDB | None:
        doc = await self.collection.find_one({"_id": user_id})
        return _to_model(doc) if doc else None

    async def count(self) -> int:
        return await self.collection.count_documents({})
