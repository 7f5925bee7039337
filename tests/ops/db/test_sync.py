"""db sync: live copy under a concurrent writer, crash-restart, and a source that goes away.

The issue asks for 30 s of writes; these tests write until the writer has done ~1,500 operations
(~8 s) to keep CI time (noted in docs/db-operations.md). They wait on conditions, never for a
fixed time. `bench/bench_dbops.py` measures lag over longer runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from bson import ObjectId

from paletai.db.client import Client, make_client
from paletai.db.embedded import EmbeddedMongo
from paletai.ops.db.cli import StatusLine
from paletai.ops.db.common import SYNC_STATE_COLLECTION
from paletai.ops.db.sync import EVENT_BATCH, CollectionSync, SyncOptions, syncing
from paletai.ops.db.verify import verify
from paletai.ops.results import DbSyncResult
from tests.ops.conftest import game_doc, wait_until, with_db
from tests.ops.db.writer import Writer


async def _seed(client: Client, name: str, games: int) -> None:
    docs = [game_doc(i, size=400) for i in range(games)]
    for start in range(0, games, 2000):
        await client[name].games.insert_many(docs[start : start + 2000])
    await client[name].games.create_index("created_at")
    await client[name].users.insert_many([{"_id": f"user-{i}", "n": i} for i in range(50)])


async def test_sync_under_concurrent_writer_ends_identical(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
) -> None:
    await _seed(mongo_client, fresh_name, 3000)
    writer = Writer(mongo_client[fresh_name], rate=200)
    await writer.load_ids()
    writer.start()
    async with syncing(
        with_db(mongo_uri, fresh_name),
        with_db(second_uri, fresh_name),
        options=SyncOptions(reconcile_interval=3.0),
    ) as engine:
        await wait_until(
            lambda: (
                writer.ops["insert"] > 600
                and writer.ops["update"] > 600
                and writer.ops["delete"] > 120
            ),
            "the writer's volume",
        )
        ops = await writer.finish()
        assert ops["insert"] > 500
        assert ops["update"] > 500
        assert ops["delete"] > 100
        await engine.drain(60, strict=True)
        statuses = {s.name: s for s in engine.statuses}
        assert statuses["games"].phase == "stream"
        assert statuses["games"].events > 1000  # changes were streamed, not just recopied
        assert statuses["games"].write_errors == 0
        # The operator's status line: phase, copy progress, events, lag per collection.
        rows = dict(StatusLine(lambda: [engine]).rows())
        assert rows["games"].startswith("stream")
        assert f"copied {statuses['games'].copied}/" in rows["games"]
        assert f"events {statuses['games'].events} (" in rows["games"]
        assert "lag 0.00 s" in rows["games"]
    report = await verify(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name))
    assert report.identical, report.as_dict()
    # The checkpoint lives in the target and is not part of the data.
    state = await second_client[fresh_name][SYNC_STATE_COLLECTION].find_one({"_id": "games"})
    assert state is not None
    assert state["phase"] == "stream"


async def test_sync_refuses_a_non_empty_target(
    mongo_client: Client, second_client: Client, mongo_uri: str, second_uri: str, fresh_name: str
) -> None:
    from paletai.ops.errors import OpsError

    await mongo_client[fresh_name].games.insert_one(game_doc(1))
    await second_client[fresh_name].games.insert_one(game_doc(2))
    with pytest.raises(OpsError, match="not empty.*--drop.*--force"):
        async with syncing(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)):
            pass


async def test_the_maintenance_flag_is_not_copied(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
) -> None:
    """A deployment's switch is not data: after a cutover the new side must not inherit the old
    side's maintenance, and a reverse sync must not reopen the old side."""
    await mongo_client[fresh_name].games.insert_many([game_doc(i) for i in range(20)])
    await mongo_client[fresh_name].service_state.insert_one({"_id": "maintenance", "enabled": True})
    async with syncing(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)) as engine:
        await engine.drain(60, strict=True)
    target = second_client[fresh_name]
    assert await target.games.count_documents({}) == 20
    assert "service_state" not in await target.list_collection_names()
    report = await verify(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name))
    assert report.identical, report.as_dict()


async def test_changes_read_but_not_applied_are_replayed_after_a_stop(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine dies between reading changes and applying them: its checkpoint must not cover
    them, so the next run replays them."""
    games = mongo_client[fresh_name].games
    await games.insert_many([{**game_doc(i), "_id": f"g{i}"} for i in range(20)])
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)

    async def killed(self: CollectionSync, ids: object) -> int:
        raise RuntimeError("killed between reading and applying")

    async def edit_while_killed() -> None:
        async with syncing(src, dst) as engine:
            await engine.drain(60, strict=True)
            monkeypatch.setattr(CollectionSync, "apply_ids", killed)
            for i in range(5):
                await games.update_one({"_id": f"g{i}"}, {"$set": {"title": f"edited {i}"}})
            await engine.wait_stopped()

    with pytest.raises(RuntimeError, match="killed between"):
        await edit_while_killed()
    monkeypatch.undo()

    state = await second_client[fresh_name][SYNC_STATE_COLLECTION].find_one({"_id": "games"})
    assert state is not None
    pending: set[object] = set()
    async with await games.watch(resume_after=state["token"]) as stream:

        async def replayed() -> bool:
            event = await stream.try_next()
            if event is not None:
                pending.add(event["documentKey"]["_id"])
            return len(pending) >= 5

        await wait_until(replayed, "the edits after the checkpoint", 10)
    assert pending == {f"g{i}" for i in range(5)}

    async with syncing(src, dst) as engine:
        await engine.drain(60, strict=True)
    report = await verify(src, dst)
    assert report.identical, report.as_dict()


async def test_a_resumed_sync_restores_changes_the_source_no_longer_replays(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
) -> None:
    """A killed sync's checkpoint may point past changes it read but never applied when the
    source dropped that history without saying so (the embedded stand-in does:
    docs/embedded-mongodb.md). The next run must still end identical."""
    games = mongo_client[fresh_name].games
    await games.insert_many([game_doc(i) for i in range(30)])
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    async with syncing(src, dst) as engine:
        await engine.drain(60, strict=True)

    edited = [d["_id"] async for d in games.find({}, {"_id": 1}).sort("_id", 1).limit(3)]
    for n, key in enumerate(edited):
        await games.update_one({"_id": key}, {"$set": {"title": f"edited {n}"}})
    async with await games.watch() as stream:
        past_the_edits = stream.resume_token
    await second_client[fresh_name][SYNC_STATE_COLLECTION].update_one(
        {"_id": "games"}, {"$set": {"token": past_the_edits}}
    )

    async with syncing(src, dst) as engine:
        await engine.drain(60, strict=True)
        status = next(s for s in engine.statuses if s.name == "games")
        assert status.reconcile_fixes == 3
    report = await verify(src, dst)
    assert report.identical, report.as_dict()


def _start_sync(source: str, target: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """The sync as a real process (the CLI), so that it can be killed with SIGKILL."""
    cmd = [sys.executable, "-m", "paletai.ops.db.cli", "sync", "--source", source]
    cmd += ["--target", target, "--reconcile-interval", "3", *extra]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def _writes(writer: Writer) -> int:
    return writer.ops["insert"] + writer.ops["update"] + writer.ops["delete"]


async def _wait_state(
    client: Client,
    db: str,
    coll: str,
    predicate: Callable[[dict[str, object]], bool],
    limit_s: float = 60.0,
) -> dict[str, object]:
    """The sync checkpoint of `coll` once it matches `predicate`."""
    found: list[dict[str, object]] = []

    async def matches() -> bool:
        state = await client[db][SYNC_STATE_COLLECTION].find_one({"_id": coll})
        if state is not None and predicate(state):
            found.append(state)
        return bool(found)

    await wait_until(matches, f"the sync state of {coll}", limit_s)
    return found[0]


@pytest.mark.slow
async def test_sync_survives_kill_9_during_copy_and_streaming(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    await _seed(mongo_client, fresh_name, 20000)
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    log = tmp_path / "sync.log"
    writer = Writer(mongo_client[fresh_name], rate=200)
    await writer.load_ids()
    writer.start()

    # 1. Killed during the copy.
    first = _start_sync(src, dst, log)
    state = await _wait_state(
        second_client, fresh_name, "games", lambda s: s.get("copied", 0) >= 3000
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    state = await second_client[fresh_name][SYNC_STATE_COLLECTION].find_one({"_id": "games"})
    assert state is not None
    assert state["phase"] == "copy", "the copy finished before the kill: seed more documents"
    copied_at_kill = int(state["copied"])
    assert copied_at_kill < 20000
    # A backlog (as after a slow copy on a busy machine) of more changes than the first stream
    # checkpoint can cover (EVENT_BATCH), so the stream is still behind when it is killed below.
    writes_at_kill = _writes(writer)
    backlog = writes_at_kill + 2 * EVENT_BATCH + 500
    await wait_until(lambda: _writes(writer) >= backlog, "a backlog of changes", 90)

    # 2. Restarted: it continues the copy (it does not start over), then streams; killed again.
    second = _start_sync(src, dst, log)
    state = await _wait_state(
        second_client, fresh_name, "games", lambda s: s.get("phase") == "stream"
    )
    assert state["copy_resumed_from"] == copied_at_kill
    # Killed at the first checkpoint the stream stores: the changes made under the writer since
    # the copy began are still being replayed (the stream is behind), so nothing may be lost
    # between a change read from the stream and the checkpoint that covers it.
    copy_token = state["token"]
    await _wait_state(second_client, fresh_name, "games", lambda s: s.get("token") != copy_token)
    second.send_signal(signal.SIGKILL)
    second.wait()
    resumed = await second_client[fresh_name][SYNC_STATE_COLLECTION].find_one({"_id": "games"})
    assert resumed is not None
    assert resumed["phase"] == "stream"
    updates_at_kill = writer.ops["update"]
    await wait_until(  # writes while no sync runs
        lambda: writer.ops["update"] >= updates_at_kill + 100, "writes while no sync runs"
    )

    ops = await writer.finish()
    assert ops["update"] > 300

    # 3. Restarted once more, to completion.
    third = _start_sync(src, dst, log, "--until-synced", "--timeout", "120")
    code = await asyncio.to_thread(third.wait, 180)
    assert code == 0, log.read_text()[-3000:]
    report = await verify(src, dst)
    assert report.identical, report.as_dict()
    games = next(c for c in report.collections if c.name == "games")
    assert games.target_count == games.source_count


@pytest.mark.slow
async def test_sync_retries_while_the_source_is_away(
    second_client: Client,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    source_server = EmbeddedMongo(tmp_path / "src")
    source_uri = source_server.start()
    port = source_server.port
    client = make_client(source_uri, serverSelectionTimeoutMS=1000)
    try:
        await _seed(client, fresh_name, 2000)
        writer = Writer(client[fresh_name], rate=100)
        await writer.load_ids()
        writer.start()
        async with syncing(
            with_db(source_uri, fresh_name),
            with_db(second_uri, fresh_name),
            options=SyncOptions(reconcile_interval=2.0, retry_max=1.0),
            timeout_ms=1000,
        ) as engine:
            await engine.drain(60)
            games = next(s for s in engine.statuses if s.name == "games")
            events = games.events
            await wait_until(lambda: games.events > events, "events streamed from the writer")

            source_server.stop()  # the source goes away until the sync retries
            await wait_until(
                lambda: (
                    writer.ops["failed"] > 0 and any(s.phase == "retrying" for s in engine.statuses)
                ),
                "a retry (and a failed write)",
            )
            assert any(s.phase == "retrying" for s in engine.statuses)
            source_server = EmbeddedMongo(tmp_path / "src", port=port)
            source_server.start()
            await wait_until(
                lambda: all(s.phase == "stream" for s in engine.statuses), "streaming again"
            )

            ops = await writer.finish()
            assert ops["failed"] > 0  # the outage was real for the writer too
            await engine.drain(60, strict=True)
            assert sum(s.retries for s in engine.statuses) > 0
        report = await verify(with_db(source_uri, fresh_name), with_db(second_uri, fresh_name))
        assert report.identical, report.as_dict()
    finally:
        await client.close()
        source_server.stop()


@pytest.mark.parametrize("mode", [[], ["--until-synced"]], ids=["follow", "until-synced"])
async def test_a_checkpoint_of_another_source_is_a_one_line_error(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    mode: list[str],
) -> None:
    await mongo_client[fresh_name].games.insert_many([game_doc(i) for i in range(5)])
    target = with_db(second_uri, fresh_name)
    # A checkpoint written by a sync from elsewhere (another server, same database name).
    await second_client[fresh_name][SYNC_STATE_COLLECTION].insert_one(
        {"_id": "games", "phase": "stream", "source": "old-host:27017/paletai", "token": {}}
    )
    await second_client[fresh_name].games.insert_one(game_doc(99))
    cmd = [sys.executable, "-m", "paletai.ops.db.cli", "sync", "--target", target]
    cmd += ["--source", with_db(mongo_uri, fresh_name), "--timeout", "60", *mode]
    done = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=90, env=dict(os.environ)
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert output.splitlines() == [output]
    assert "sync checkpoint for 'games' belongs to a sync from 'old-host:27017/paletai'" in output
    assert output.endswith("use --reset to start over")


async def test_a_refused_write_is_retried_until_it_goes_through(
    mongo_client: Client, second_client: Client, mongo_uri: str, second_uri: str, fresh_name: str
) -> None:
    """The target's unique index refuses a change (another document there holds the value)
    until that document is gone: the sync keeps retrying the `_id` with backoff, then writes it."""
    users = mongo_client[fresh_name].users
    await users.insert_many([{"_id": f"user-{i}", "email": f"u{i}@x"} for i in range(5)])
    await users.create_index("email", unique=True)
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    options = SyncOptions(reconcile_interval=3600, write_retry_initial=0.05, write_retry_max=0.2)
    async with syncing(src, dst, options=options) as engine:
        await engine.drain(60)
        # Behind the sync's back, a document on the target takes the value user-1 moves to.
        await second_client[fresh_name].users.insert_one({"_id": "squatter", "email": "new@x"})
        await users.update_one({"_id": "user-1"}, {"$set": {"email": "new@x"}})
        status = next(s for s in engine.statuses if s.name == "users")
        await wait_until(lambda: status.write_errors >= 3, "the write refused, then retried")
        assert status.failing == 1
        assert status.failing_ids == ['"user-1"']
        assert "UNIQUE" in (status.last_error or "") or "E11000" in (status.last_error or "")
        await second_client[fresh_name].users.delete_one({"_id": "squatter"})

        async def written() -> bool:
            doc = await second_client[fresh_name].users.find_one({"_id": "user-1"})
            return doc is not None and doc["email"] == "new@x"

        await wait_until(written, "user-1 written once the clash is gone", 10)
        assert status.failing == 0
        assert status.failing_ids == []
    report = await verify(src, dst)
    assert report.identical, report.as_dict()


async def test_until_synced_names_the_ids_whose_writes_still_fail(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    # The new app created its unique e-mail index on the target already, and the old data has
    # two accounts with one address: one of them can never be written.
    await mongo_client[fresh_name].users.insert_many(
        [{"_id": "u1", "email": "same@x"}, {"_id": "u2", "email": "same@x"}]
        + [{"_id": f"u{i}", "email": f"{i}@x"} for i in range(3, 10)]
    )
    await second_client[fresh_name].users.create_index("email", unique=True)
    out = tmp_path / "sync.json"
    cmd = [sys.executable, "-m", "paletai.ops.db.cli", "sync", "--until-synced", "--force"]
    cmd += ["--source", with_db(mongo_uri, fresh_name), "--target", with_db(second_uri, fresh_name)]
    cmd += ["--timeout", "60", "--json", str(out)]
    done = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=90, env=dict(os.environ)
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 1, output
    assert "Traceback" not in output
    last = output.splitlines()[-1]
    assert last.startswith('error: caught up, but writes still fail for 1 _id(s): users: "u2"')
    result = DbSyncResult.model_validate_json(out.read_text())
    assert result.failing == 1
    assert result.collections["users"].failing_ids == ['"u2"']
    assert result.write_errors >= 2  # written more than once: retried before giving up
    assert await second_client[fresh_name].users.count_documents({}) == 8


async def test_the_content_reconcile_finds_a_missed_update(
    mongo_client: Client, second_client: Client, mongo_uri: str, second_uri: str, fresh_name: str
) -> None:
    """An update that never came as an event (here: a write to the target behind the sync's
    back; same counts, same `_id`s) is found by comparing contents, and repaired."""
    await mongo_client[fresh_name].games.insert_many([game_doc(i) for i in range(50)])
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    options = SyncOptions(reconcile_interval=0.2, content_reconcile_interval=3600)
    async with syncing(src, dst, options=options) as engine:
        await engine.drain(60)
        games = next(s for s in engine.statuses if s.name == "games")
        victim = await second_client[fresh_name].games.find_one({}, sort=[("_id", 1)])
        assert victim is not None
        await second_client[fresh_name].games.update_one(
            {"_id": victim["_id"]}, {"$set": {"title": "changed behind the sync's back"}}
        )
        # _id-set reconciles alone never see it.
        before = games.reconciles
        await wait_until(lambda: games.reconciles >= before + 3, "a few _id reconciles")
        doc = await second_client[fresh_name].games.find_one({"_id": victim["_id"]})
        assert doc is not None
        assert doc["title"] == "changed behind the sync's back"
        engine.options.content_reconcile_interval = 0.2

        async def repaired() -> bool:
            doc = await second_client[fresh_name].games.find_one({"_id": victim["_id"]})
            return doc is not None and doc["title"] == victim["title"]

        await wait_until(repaired, "the content reconcile repairing it", 20)
        assert games.content_reconciles >= 1
        assert games.reconcile_fixes >= 1
    report = await verify(src, dst)
    assert report.identical, report.as_dict()


async def test_string_ids_that_look_like_object_ids_survive_their_change_events(
    mongo_client: Client, second_client: Client, mongo_uri: str, second_uri: str, fresh_name: str
) -> None:
    """PaletAI's tasks have string `_id`s of 24 hex digits. The stand-in names them as ObjectIds
    in change events' documentKey, and a filter on that ObjectId matches the string `_id`: a
    delete of the mangled key, run after the replace of the real one (an unordered bulk runs its
    deletes last), removed the document from the target, and a reverse sync then removed it
    from the old side too (a task lost in a rehearsal). Events are applied by the document's
    own `_id`."""
    src, dst = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    await mongo_client[fresh_name].tasks.insert_one({"_id": "seed", "status": "done"})
    options = SyncOptions(reconcile_interval=3600, content_reconcile_interval=3600)
    async with syncing(src, dst, options=options) as engine:
        await engine.drain(60)
        ids = [str(ObjectId()) for _ in range(20)]
        tasks = mongo_client[fresh_name].tasks
        await tasks.insert_many([{"_id": value, "status": "queued"} for value in ids])
        for value in ids:
            await tasks.update_one({"_id": value}, {"$set": {"status": "running"}})
        await engine.drain(60, reconcile=False)
        copied = {d["_id"]: d["status"] async for d in second_client[fresh_name].tasks.find()}
        assert {value: copied.get(value) for value in ids} == dict.fromkeys(ids, "running")
