"""Indexes, created idempotently at start-up (create_index is a no-op when one exists).

Only index kinds that MongoDB Atlas and Azure Cosmos DB for MongoDB both support: single and
compound keys, unique, TTL on a date field. Sort keys used with range filters are integers,
which every MongoDB flavour (and the embedded stand-in) ranges over quickly.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from paletai.db.client import Database
from paletai.users.repository import UsersRepository

INDEXES: dict[str, list[IndexModel]] = {
    "users": [IndexModel([("email", ASCENDING)], unique=True, name="email_unique")],
    "games": [
        IndexModel([("rank", DESCENDING)], unique=True, name="rank_unique"),
        IndexModel([("likes_count", DESCENDING), ("rank", DESCENDING)], name="popular"),
        IndexModel([("author_id", ASCENDING), ("rank", DESCENDING)], name="by_author"),
        # Games whose likes_count a crash may have left stale (see GamesRepository.like).
        IndexModel([("likes_pending", ASCENDING)], name="likes_pending"),
    ],
    "likes": [
        IndexModel([("game_id", ASCENDING), ("user_id", ASCENDING)], unique=True, name="like_once"),
        IndexModel([("user_id", ASCENDING)], name="by_user"),
    ],
    "tasks": [
        IndexModel([("status", ASCENDING), ("not_before", ASCENDING)], name="queue"),
        IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)], name="leases"),
        IndexModel([("user_id", ASCENDING)], name="by_user"),
    ],
    "subscriptions": [IndexModel([("user_id", ASCENDING)], name="by_user")],
    "prompt_usage": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires"),
        IndexModel([("user_id", ASCENDING)], name="by_user"),
    ],
    "login_failures": [
        IndexModel([("key", ASCENDING), ("at_ms", ASCENDING)], name="key_at"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires"),
    ],
    "login_known": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires"),
    ],
    "registrations": [
        IndexModel([("key", ASCENDING), ("at_ms", ASCENDING)], name="key_at"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires"),
    ],
}


async def ensure_indexes(db: Database) -> None:
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)
    # Unique usernames (case-insensitive): apart, since data from before it may collide.
    await UsersRepository(db).ensure_unique_usernames()
