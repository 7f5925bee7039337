"""`games`, `game_html` and `likes`: the only code that touches them."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from paletai.core.timeutil import as_utc, new_rank, utcnow
from paletai.db.client import Database
from paletai.games.schemas import GameInDB

LIST_PROJECTION = {"usage": 0}


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
        """Point the game at a new cover image; False when the game is gone or its cover
        is no longer `old_name`."""
        result = await self.games.update_one(
            {"_id": game_id, "image_name": old_name},
            {"$set": {"image_name": image_name, "image_url": image_url}},
        )
        return result.modified_count == 1

    async def delete(self, game_id: str) -> None:
        await self.games.delete_one({"_id": game_id})
        await self.html.delete_one({"_id": game_id})
        await self.likes.delete_many({"game_id": game_id})

    async def count(self) -> int:
        return await self.games.count_documents({})

    # --- likes --------------------------------------------------------------------------
    async def like(self, game_id: str, user_id: str) -> int | None:
        """Add the like; the new count, or None when it already existed (counter unchanged)."""
        try:
            await self.likes.insert_one(
                {
                    "_id": f"{game_id}:{user_id}",
                    "game_id": game_id,
                    "user_id": user_id,
                    "created_at": utcnow(),
                }
            )
        except DuplicateKeyError:
            return None
        return await self._add_likes(game_id, 1)

    async def unlike(self, game_id: str, user_id: str) -> int | None:
        """Remove the like; the new count, or None when there was none (counter unchanged)."""
        result = await self.likes.delete_one({"_id": f"{game_id}:{user_id}"})
        if result.deleted_count != 1:
            return None
        return await self._add_likes(game_id, -1)

    async def _add_likes(self, game_id: str, delta: int) -> int:
        doc = await self.games.find_one_and_update(
            {"_id": game_id},
            {"$inc": {"likes_count": delta}},
            projection={"likes_count": 1},
            return_document=ReturnDocument.AFTER,
        )
        return int(doc.get("likes_count", 0)) if doc else 0

    async def likes_count(self, game_id: str) -> int:
        doc = await self.games.find_one({"_id": game_id}, {"likes_count": 1})
        return int(doc.get("likes_count", 0)) if doc else 0

    async def liked_among(self, user_id: str, game_ids: list[str]) -> set[str]:
        if not game_ids:
            return set()
        ids = [f"{gid}:{user_id}" for gid in game_ids]
        docs = await self.likes.find({"_id": {"$in": ids}}, {"game_id": 1}).to_list()
        return {str(d["game_id"]) for d in docs}
