"""The operations that keep likes and their counter true (games/repository.py), as MongoDB
documents them: run against the stand-in and, with PALETAI_TEST_MONGODB_URI, a real MongoDB."""

from __future__ import annotations

from pymongo import ReturnDocument

from paletai.db.client import Database
from paletai.db.indexes import ensure_indexes


async def test_push_a_token_then_pull_it_only_while_it_is_there(db: Database) -> None:
    await db.games.insert_one({"_id": "g", "likes_count": 0})
    await db.games.update_one(
        {"_id": "g"},
        {"$push": {"likes_ops": "a"}, "$inc": {"likes_pending": 1, "likes_version": 1}},
    )
    await db.games.update_one(
        {"_id": "g"},
        {"$push": {"likes_ops": "b"}, "$inc": {"likes_pending": 1, "likes_version": 1}},
    )
    update = {
        "$pull": {"likes_ops": "a"},
        "$inc": {"likes_count": 1, "likes_pending": -1, "likes_version": 1},
    }

    first = await db.games.find_one_and_update(
        {"_id": "g", "likes_ops": "a"},
        update,
        projection={"likes_count": 1},
        return_document=ReturnDocument.AFTER,
    )
    second = await db.games.find_one_and_update({"_id": "g", "likes_ops": "a"}, update)

    assert first == {"_id": "g", "likes_count": 1}
    assert second is None
    game = await db.games.find_one({"_id": "g"})
    assert game == {
        "_id": "g",
        "likes_count": 1,
        "likes_ops": ["b"],
        "likes_pending": 1,
        "likes_version": 3,
    }


async def test_inc_by_zero_creates_a_missing_field_and_keeps_a_present_one(db: Database) -> None:
    await db.games.insert_many([{"_id": "old"}, {"_id": "new", "likes_version": 4}])
    await db.games.update_many({}, {"$inc": {"likes_version": 0}})
    versions = {d["_id"]: d["likes_version"] async for d in db.games.find()}
    assert versions == {"old": 0, "new": 4}


async def test_conditional_set_on_a_version_lands_once(db: Database) -> None:
    await db.games.insert_one({"_id": "g", "likes_count": 9, "likes_version": 2})
    write = {
        "$set": {"likes_count": 1, "likes_ops": [], "likes_pending": 0},
        "$inc": {"likes_version": 1},
    }
    first = await db.games.update_one({"_id": "g", "likes_version": 2}, write)
    second = await db.games.update_one({"_id": "g", "likes_version": 2}, write)
    assert (first.matched_count, second.matched_count) == (1, 0)
    assert (await db.games.find_one({"_id": "g"}) or {})["likes_version"] == 3


async def test_marked_games_are_found_by_the_pending_integer(db: Database) -> None:
    await ensure_indexes(db)
    await db.games.insert_many(
        [
            {"_id": "a", "rank": 1, "likes_pending": 2},
            {"_id": "b", "rank": 2, "likes_pending": 0},
            {"_id": "c", "rank": 3},
        ]
    )
    found = await db.games.find({"likes_pending": {"$gt": 0}}, {"_id": 1}).to_list()
    assert found == [{"_id": "a"}]
