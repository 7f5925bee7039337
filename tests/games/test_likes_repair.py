"""Likes stay true after a crash: the crash windows, replayed deterministically, are repaired."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from typer.testing import CliRunner

from paletai.cli import app
from paletai.config import Settings
from paletai.db.client import Database
from paletai.games.repository import GamesRepository
from paletai.games.service import repair_likes
from tests.conftest import create_game, running_app

runner = CliRunner()


class Killed(Exception):
    """Stands for the process dying at this point."""


async def _state(db: Database, game_id: str) -> tuple[int, int, int]:
    """(stored likes_count, likes in the collection, pending op tokens)."""
    game = await db["games"].find_one({"_id": game_id})
    assert game is not None
    likes = await db["likes"].count_documents({"game_id": game_id})
    return int(game.get("likes_count", 0)), likes, int(game.get("likes_pending", 0))


def _crash_before_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    async def killed(self: GamesRepository, game_id: str, op: str, delta: int) -> int:
        raise Killed

    monkeypatch.setattr(GamesRepository, "_finish_like_op", killed)


async def test_like_written_counter_not_moved_is_repaired(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    game_id = await create_game(db)
    repo = GamesRepository(db)
    await repo.like(game_id, "u1")
    with monkeypatch.context() as m:
        _crash_before_counter(m)
        with pytest.raises(Killed):
            await repo.like(game_id, "u2")
    assert await _state(db, game_id) == (1, 2, 1)  # the drift the issue saw, and its marker

    result = await repair_likes(db)

    assert (result.checked, result.fixed, result.unsettled) == (1, 1, 0)
    assert await _state(db, game_id) == (2, 2, 0)
    again = await repair_likes(db)
    assert (again.checked, again.fixed) == (0, 0)


async def test_unlike_written_counter_not_moved_is_repaired(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    game_id = await create_game(db)
    repo = GamesRepository(db)
    await repo.like(game_id, "u1")
    with monkeypatch.context() as m:
        _crash_before_counter(m)
        with pytest.raises(Killed):
            await repo.unlike(game_id, "u1")
    assert await _state(db, game_id) == (1, 0, 1)

    result = await repair_likes(db)

    assert (result.checked, result.fixed) == (1, 1)
    assert await _state(db, game_id) == (0, 0, 0)


async def test_crash_before_the_like_is_written_changes_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    game_id = await create_game(db)
    repo = GamesRepository(db)

    async def killed(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(repo.likes, "insert_one", killed)
    with pytest.raises(Killed):
        await repo.like(game_id, "u1")
    assert await _state(db, game_id) == (0, 0, 1)

    result = await repair_likes(db)

    assert (result.checked, result.fixed) == (1, 0)
    assert await _state(db, game_id) == (0, 0, 0)


@pytest.mark.parametrize("like_before_recount", [True, False])
async def test_a_live_like_whose_marker_a_recount_took_is_counted_once(
    db: Database, like_before_recount: bool
) -> None:
    """A recount running beside a live like (another worker's start-up, or the operator's
    command) takes its marker; the like's own counter move must then neither double-count
    (like written before the recount counted) nor be lost (written after)."""
    game_id = await create_game(db)
    repo = GamesRepository(db)
    op = await repo._begin_like_op(game_id)
    assert op is not None
    like = {"_id": f"{game_id}:u1", "game_id": game_id, "user_id": "u1"}
    if like_before_recount:
        await db["likes"].insert_one(like)
    await repair_likes(db)
    if not like_before_recount:
        await db["likes"].insert_one(like)

    assert await repo._finish_like_op(game_id, op, 1) == 1
    assert await _state(db, game_id) == (1, 1, 0)


async def test_a_recount_does_not_overwrite_a_like_that_lands_while_it_counts(
    db: Database,
) -> None:
    game_id = await create_game(db, likes_count=5)  # stale: there are no likes
    repo = GamesRepository(db)
    other = GamesRepository(db)
    real_count = repo.likes.count_documents
    calls = 0

    async def count_then_like(*args: Any, **kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        counted = await real_count(*args, **kwargs)
        if calls == 1:  # a like by another worker lands after this count was taken
            await other.like(game_id, "u1")
        return counted

    repo.likes.count_documents = count_then_like  # type: ignore[method-assign]

    recount = await repo.recount_likes(game_id)

    assert recount is not None
    assert (recount.count, recount.fixed, recount.settled) == (1, True, True)
    assert calls == 2  # the first write was refused, the second count includes the like
    assert await _state(db, game_id) == (1, 1, 0)


async def test_only_marked_games_are_recounted_unless_all(db: Database) -> None:
    drifted = await create_game(db, likes_count=7)  # no marker: the old code's drift
    marked = [await create_game(db, likes_count=3, likes_pending=1) for _ in range(3)]

    limited = await repair_likes(db, limit=2)
    assert (limited.checked, limited.fixed) == (2, 2)
    rest = await repair_likes(db)
    assert (rest.checked, rest.fixed) == (1, 1)
    assert await _state(db, drifted) == (7, 0, 0)

    right, wrong = await create_game(db, likes_count=2), await create_game(db, likes_count=5)
    for game_id in (right, wrong):
        await db["likes"].insert_many(
            [{"_id": f"{game_id}:{u}", "game_id": game_id, "user_id": u} for u in ("a", "b")]
        )

    everything = await repair_likes(db, all_games=True)

    assert (everything.scope, everything.checked, everything.fixed) == ("all", 6, 2)
    for game_id in [drifted, *marked]:
        assert await _state(db, game_id) == (0, 0, 0)
    for game_id in (right, wrong):
        assert await _state(db, game_id) == (2, 2, 0)


async def test_the_app_repairs_marked_games_at_start_up(db: Database, settings: Settings) -> None:
    game_id = await create_game(db, likes_count=4, likes_pending=1)
    await db["likes"].insert_one({"_id": f"{game_id}:u1", "game_id": game_id, "user_id": "u1"})

    async with running_app(settings) as (_, client):
        # The repair runs in the background: the app answers before it is done.
        assert (await client.get("/health")).status_code == 200
        for _ in range(200):
            if (await _state(db, game_id))[0] == 1:
                break
            await asyncio.sleep(0.05)
        body = (await client.get(f"/games/{game_id}")).json()

    assert body["likes_count"] == 1
    assert await _state(db, game_id) == (1, 1, 0)


# --- paletai db repair likes --------------------------------------------------------------


def test_repair_command_reports_checked_and_fixed(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    with MongoClient(mongo_uri) as client:
        games = client[db_name]["games"]
        games.insert_many(
            [
                {"_id": "g1", "likes_count": 2, "likes_pending": 1, "likes_ops": ["x"]},
                {"_id": "g2", "likes_count": 9},
            ]
        )
        client[db_name]["likes"].insert_one({"_id": "g1:u", "game_id": "g1", "user_id": "u"})
        try:
            marked = runner.invoke(
                app, ["db", "repair", "likes", "--uri", mongo_uri, "--db", db_name]
            )
            out = tmp_path / "repair.json"
            every = runner.invoke(
                app,
                ["db", "repair", "likes", "--all", "--json", str(out)],
                env={"DB_PATH": mongo_uri, "DB_NAME": db_name},
            )
            counts = {d["_id"]: d["likes_count"] for d in games.find()}
        finally:
            client.drop_database(db_name)

    assert marked.exit_code == 0, marked.output
    assert "1 games checked, 1 fixed" in marked.output
    assert every.exit_code == 0, every.output
    assert "2 games checked, 1 fixed" in every.output
    assert json.loads(out.read_text()) == {
        "command": "db repair likes",
        "schema_version": 1,
        "scope": "all",
        "checked": 2,
        "fixed": 1,
        "unsettled": 0,
    }
    assert counts == {"g1": 1, "g2": 0}


def test_repair_command_fails_in_one_line_without_a_database() -> None:
    missing = runner.invoke(app, ["db", "repair", "likes"], env={"DB_PATH": ""})
    unreachable = runner.invoke(
        app, ["db", "repair", "likes", "--uri", "mongodb://127.0.0.1:1/x"], env={"COLUMNS": "200"}
    )

    assert missing.exit_code != 0
    assert missing.output.strip() == (
        "error: no database: set DB_PATH (or pass --uri) to the MongoDB URI"
    )
    assert unreachable.exit_code != 0
    assert unreachable.output.strip().startswith("error: cannot reach MongoDB at 127.0.0.1:1")
    assert "DB_PATH" in unreachable.output
    assert len(unreachable.output.strip().splitlines()) == 1
    assert "Traceback" not in unreachable.output
