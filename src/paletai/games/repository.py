"""`games`, `game_html` and `likes`: the only code that touches them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from paletai.core.timeutil import as_utc, new_rank, utcnow
from paletai.db.client import Database
from paletai.games.schemas import GameInDB

LIST_PROJECTION = {"usage": 0, "likes_ops": 0}


@dataclass(frozen=True)
class LikesRecount:
    """One game's recount: the true count, whether the stored one was wrong, and whether the
    recount landed (False: traffic kept moving the game; it stays marked for the next try)."""

    count: int
    fixed: bool
    settled: bool = True


def _to_game(doc: dict[str, Any]) -> GameInDB:
    data = dict(doc)
    data["id"] = data.pop("_id")
    data["created_at"] = as_utc(data["created_at"])
    return GameInDB.model_validate(data)


class GamesRepository:
    def __init__(self, db: Database) -> None:
        self.games = db["games"]
        self.html = db["game_html"]
        self.likes = db["likes"]

    async def publish(self, game: dict[str, Any], html: str) -> bool:
        """Store a finished game; False when this game id was already published (a retry).

        The HTML goes first, so a game in a listing always has something to play.
        """
        await self.html.replace_one(
            {"_id": game["_id"]}, {"_id": game["_id"], "html": html}, upsert=True
        )
        for _ in range(5):
            doc = {**game, "rank": new_rank(), "created_at": game.get("created_at") or utcnow()}
            try:
                await self.games.insert_one(doc)
                return True
            except DuplicateKeyError as exc:
                if await self.games.find_one({"_id": game["_id"]}, {"_id": 1}):
                    return False
                # A rank collision (1 in 1,000 within the same microsecond): draw again.
                last = exc
        raise last

    async def get(self, game_id: str) -> GameInDB | None:
        doc = await self.games.find_one({"_id": game_id})
        return _to_game(doc) if doc else None

    async def get_html(self, game_id: str) -> str | None:
        doc = await self.html.find_one({"_id": game_id})
        return str(doc["html"]) if doc else None

    async def newest(
        self, limit: int, before_rank: int | None = None, author_id: str | None = None
    ) -> list[GameInDB]:
        """Newest first (optionally one author's), continuing below `before_rank`."""
        query: dict[str, Any] = {} if author_id is None else {"author_id": author_id}
        if before_rank is not None:
            query["rank"] = {"$lt": before_rank}
        docs = (
            await self.games.find(query, LIST_PROJECTION)
            .sort("rank", DESCENDING)
            .limit(limit)
            .to_list()
        )
        return [_to_game(d) for d in docs]

    async def popular(self, limit: int, after: tuple[int, int] | None = None) -> list[GameInDB]:
        """Most liked first, then newest. `after` = (likes_count, rank) of the last item seen."""
        sort = [("likes_count", DESCENDING), ("rank", DESCENDING)]
        if after is None:
            docs = await self.games.find({}, LIST_PROJECTION).sort(sort).limit(limit).to_list()
            return [_to_game(d) for d in docs]
        likes, rank = after
        # The rest of the tie at this like count, then everything with fewer likes: two simple
        # indexed ranges instead of one $or.
        docs = (
            await self.games.find({"likes_count": likes, "rank": {"$lt": rank}}, LIST_PROJECTION)
            .sort("rank", DESCENDING)
            .limit(limit)
            .to_list()
        )
        if len(docs) < limit:
            docs += (
                await self.games.find({"likes_count": {"$lt": likes}}, LIST_PROJECTION)
                .sort(sort)
                .limit(limit - len(docs))
                .to_list()
            )
        return [_to_game(d) for d in docs]

    async def replace_cover(
        self, game_id: str, old_name: str, image_name: str, image_url: str
    ) -> bool:
        """Point the game at a new cover image, remembering `old_name` as its `card_name` (the
        blob stays until the game is deleted); False when the game is gone or its cover is no
        longer `old_name`."""
        result = await self.games.update_one(
            {"_id": game_id, "image_name": old_name},
            {"$set": {"image_name": image_name, "image_url": image_url, "card_name": old_name}},
        )
        return result.modified_count == 1

    async def delete(self, game_id: str) -> None:
        await self.games.delete_one({"_id": game_id})
        await self.html.delete_one({"_id": game_id})
        await self.likes.delete_many({"game_id": game_id})

    async def count(self) -> int:
        return await self.games.count_documents({})

    # --- likes --------------------------------------------------------------------------
    # The `likes` collection is the truth; `games.likes_count` follows it with $inc. A like or
    # unlike first records an op token on the game (`likes_ops`, counted in `likes_pending`),
    # then writes the like, then moves the counter and drops the token in one update. A crash
    # in between leaves the token behind, so `recount_likes` can repair exactly those games.
    # `likes_version` changes with every counter write: a recount only lands if nothing moved
    # while it counted. docs/architecture.md has the reasoning.

    async def like(self, game_id: str, user_id: str) -> int | None:
        """Add the like; the new count, or None when it already existed (counter unchanged)."""
        like_id = f"{game_id}:{user_id}"
        # A repeat (the idempotent case) costs one read and marks nothing.
        if await self.likes.find_one({"_id": like_id}, {"_id": 1}):
            return None
        op = await self._begin_like_op(game_id)
        if op is None:
            return None
        try:
            await self.likes.insert_one(
                {"_id": like_id, "game_id": game_id, "user_id": user_id, "created_at": utcnow()}
            )
        except DuplicateKeyError:
            await self._finish_like_op(game_id, op, 0)
            return None
        return await self._finish_like_op(game_id, op, 1)

    async def unlike(self, game_id: str, user_id: str) -> int | None:
        """Remove the like; the new count, or None when there was none (counter unchanged)."""
        like_id = f"{game_id}:{user_id}"
        if not await self.likes.find_one({"_id": like_id}, {"_id": 1}):
            return None
        op = await self._begin_like_op(game_id)
        if op is None:
            return None
        result = await self.likes.delete_one({"_id": like_id})
        if result.deleted_count != 1:
            await self._finish_like_op(game_id, op, 0)
            return None
        return await self._finish_like_op(game_id, op, -1)

    async def _begin_like_op(self, game_id: str) -> str | None:
        """Record that this game's counter is about to move; None when the game is gone."""
        op = uuid.uuid4().hex
        result = await self.games.update_one(
            {"_id": game_id},
            {"$push": {"likes_ops": op}, "$inc": {"likes_pending": 1, "likes_version": 1}},
        )
        return op if result.matched_count == 1 else None

    async def _finish_like_op(self, game_id: str, op: str, delta: int) -> int:
        """Move the counter by `delta` and drop the op's token, in one single-document update."""
        doc = await self.games.find_one_and_update(
            # Only while our token is there: a recount that already counted our write took it.
            {"_id": game_id, "likes_ops": op},
            {
                "$pull": {"likes_ops": op},
                "$inc": {"likes_count": delta, "likes_pending": -1, "likes_version": 1},
            },
            projection={"likes_count": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return int(doc.get("likes_count", 0))
        # A recount took our token while we wrote: it may have counted before our write.
        repair = await self.recount_likes(game_id)
        return repair.count if repair is not None else 0

    async def recount_likes(self, game_id: str, attempts: int = 5) -> LikesRecount | None:
        """Set the game's `likes_count` from its likes and clear its op tokens; None if gone.

        Safe under live traffic: the write only lands when no like op moved the game while it
        counted (`likes_version`); otherwise it counts again. When it cannot settle, the game
        is left marked so that the next reconcile tries again.
        """
        stored = 0
        for _ in range(attempts):
            doc = await self.games.find_one(
                {"_id": game_id}, {"likes_count": 1, "likes_version": 1}
            )
            if doc is None:
                return None
            stored = int(doc.get("likes_count", 0))
            if doc.get("likes_version") is None:  # a game from before the markers
                await self.games.update_one({"_id": game_id}, {"$inc": {"likes_version": 0}})
                continue
            count = await self.likes.count_documents({"game_id": game_id})
            result = await self.games.update_one(
                {"_id": game_id, "likes_version": doc["likes_version"]},
                {
                    "$set": {"likes_count": count, "likes_ops": [], "likes_pending": 0},
                    "$inc": {"likes_version": 1},
                },
            )
            if result.matched_count == 1:
                return LikesRecount(count=count, fixed=stored != count)
        await self.games.update_one(
            {"_id": game_id},
            {"$push": {"likes_ops": "recount"}, "$inc": {"likes_pending": 1}},
        )
        return LikesRecount(count=stored, fixed=False, settled=False)

    async def games_with_pending_likes(self, limit: int | None = None) -> list[str]:
        """Ids of games whose counter may be stale (an op token left behind), up to `limit`."""
        docs = await self.games.find({"likes_pending": {"$gt": 0}}, {"_id": 1}).to_list(limit)
        return [str(d["_id"]) for d in docs]

    async def likes_per_game(self) -> dict[str, int]:
        """How many likes each liked game has, in one pass over `likes`."""
        pipeline: list[dict[str, Any]] = [{"$group": {"_id": "$game_id", "n": {"$sum": 1}}}]
        cursor = await self.likes.aggregate(pipeline)
        return {str(d["_id"]): int(d["n"]) async for d in cursor}

    async def all_like_counters(self, batch: int = 1000) -> AsyncIterator[tuple[str, int, int]]:
        """(id, likes_count, likes_pending) of every game, in `_id` order, a batch at a time."""
        last: str | None = None
        fields = {"likes_count": 1, "likes_pending": 1}
        while True:
            query: dict[str, Any] = {} if last is None else {"_id": {"$gt": last}}
            docs = await self.games.find(query, fields).sort("_id", ASCENDING).to_list(batch)
            for d in docs:
                yield str(d["_id"]), int(d.get("likes_count", 0)), int(d.get("likes_pending", 0))
            if len(docs) < batch:
                return
            last = str(docs[-1]["_id"])

    async def likes_count(self, game_id: str) -> int:
        doc = await self.games.find_one({"_id": game_id}, {"likes_count": 1})
        return int(doc.get("likes_count", 0)) if doc else 0

    async def liked_by(self, user_id: str) -> list[str]:
        """Ids of the games `user_id` likes."""
        docs = await self.likes.find({"user_id": user_id}, {"game_id": 1}).to_list()
        return [str(d["game_id"]) for d in docs]

    async def liked_among(self, user_id: str, game_ids: list[str]) -> set[str]:
        if not game_ids:
            return set()
        ids = [f"{gid}:{user_id}" for gid in game_ids]
        docs = await self.likes.find({"_id": {"$in": ids}}, {"game_id": 1}).to_list()
        return {str(d["game_id"]) for d in docs}
