"""db cutover: stop writes (operator command, or the service's maintenance switch over HTTP),
drain, verify, measure the pause, and sync back for a rollback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from paletai.db.client import Client
from paletai.ops.db import sync as sync_module
from paletai.ops.db import verify as verify_module
from paletai.ops.db.common import SYNC_STATE_COLLECTION
from paletai.ops.db.cutover import CommandSwitch, CutoverFailed, cutover, verify_after
from paletai.ops.db.sync import SyncOptions
from paletai.ops.db.verify import verify
from tests.ops.conftest import game_doc, wait_until, with_db
from tests.ops.db.writer import Writer

ADMIN_TOKEN = "test-admin-token-123"


class FakeService:
    """The old PaletAI's maintenance contract, on a real socket."""

    def __init__(self) -> None:
        self.maintenance = False
        self.calls: list[tuple[str, int]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _answer(self, code: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                ok = self.headers.get("Authorization") == f"Bearer {ADMIN_TOKEN}"
                if not ok:
                    self._answer(401, {"error": {"code": "unauthorized", "message": "no"}})
                return ok

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path != "/admin/maintenance" or not self._authorized():
                    return
                service.calls.append(("GET", 200))
                self._answer(200, {"maintenance": service.maintenance})

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/admin/maintenance" or not self._authorized():
                    return
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                service.maintenance = bool(body["enabled"])
                service.calls.append(("POST", int(service.maintenance)))
                self._answer(200, {"maintenance": service.maintenance})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_service() -> Iterator[FakeService]:
    with FakeService() as service:
        yield service


async def _seed(client: Client, name: str) -> None:
    await client[name].games.insert_many([game_doc(i, size=300) for i in range(2000)])
    await client[name].users.insert_many([{"_id": f"user-{i}"} for i in range(20)])


async def test_cutover_with_a_stop_command(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _seed(mongo_client, fresh_name)
    flag = tmp_path / "app-stopped"
    writer = Writer(mongo_client[fresh_name], rate=150, allowed=lambda: not flag.exists())
    await writer.load_ids()
    writer.start()
    await wait_until(lambda: sum(writer.ops.values()) >= 150, "writes before the cutover")
    switch = CommandSwitch(f"touch {flag}", f"rm -f {flag}")
    steps: list[str] = []
    # Every full comparison (verify's or a reconcile's) records whether writes were stopped.
    scans_while_paused: list[bool] = []
    for module in (verify_module, sync_module):
        for name in ("merge_compare", "hashed_compare"):
            monkeypatch.setattr(
                module, name, _recording(getattr(module, name), flag.exists, scans_while_paused)
            )
    report, reverse_engine = await cutover(
        with_db(mongo_uri, fresh_name),
        with_db(second_uri, fresh_name),
        switch,
        options=SyncOptions(reconcile_interval=2.0),
        step=steps.append,
    )
    ops = await writer.finish()
    assert reverse_engine is None
    assert flag.exists()
    assert ops["refused"] > 0  # writes were really stopped by the command
    assert ops["insert"] > 50  # and really went on before
    assert report.identical
    assert report.method == "command"
    assert 0 < report.write_pause_seconds < 60
    assert report.write_pause_seconds >= report.drain_seconds + report.verify_seconds
    assert any("verifying the whole database" in s for s in steps)
    # The full comparison ran before the pause, none inside it: the pause re-checked only the
    # documents written since (the writer's), not the 2,020 of the database.
    assert report.pre_verify_seconds > 0
    assert scans_while_paused.count(False) >= 2  # games and users, before the stop
    assert True not in scans_while_paused
    assert 0 < report.ids_rechecked < 2000
    assert report.rounds_before_pause >= 1
    assert report.verify_seconds >= report.count_seconds
    recorded = await second_client[fresh_name][SYNC_STATE_COLLECTION].find_one(
        {"_id": {"$regex": "^cutover:"}}
    )
    assert recorded is not None
    assert recorded["write_pause_seconds"] == report.write_pause_seconds
    final = await verify(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name))
    assert final.identical


async def test_cutover_refuses_a_wrong_admin_token(
    mongo_uri: str, second_uri: str, fresh_name: str, fake_service: FakeService, tmp_path: Path
) -> None:
    env = dict(os.environ, ADMIN_TOKEN="wrong")
    cmd = [sys.executable, "-m", "paletai.ops.db.cli", "cutover", "--yes"]
    cmd += ["--source", with_db(mongo_uri, fresh_name), "--target", with_db(second_uri, fresh_name)]
    cmd += ["--service-url", fake_service.url]
    done = await asyncio.to_thread(
        subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "refused the admin token (401)" in done.stderr
    assert fake_service.maintenance is False


def _recording(
    compare: Callable[..., Awaitable[None]], paused: Callable[[], bool], record: list[bool]
) -> Callable[..., Awaitable[None]]:
    async def recorded(*args: Any, **kwargs: Any) -> None:
        record.append(paused())
        await compare(*args, **kwargs)

    return recorded


def _popen(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=sink)


@pytest.mark.slow
async def test_cutover_through_the_maintenance_switch_then_reverse_sync(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    fake_service: FakeService,
    tmp_path: Path,
) -> None:
    await _seed(mongo_client, fresh_name)
    writer = Writer(
        mongo_client[fresh_name], rate=150, allowed=lambda: not fake_service.maintenance
    )
    await writer.load_ids()
    writer.start()
    out = tmp_path / "cutover.json"
    log = tmp_path / "cutover.log"
    cmd = [sys.executable, "-m", "paletai.ops.db.cli", "cutover", "--yes", "--reverse"]
    cmd += ["--source", with_db(mongo_uri, fresh_name), "--target", with_db(second_uri, fresh_name)]
    cmd += ["--service-url", fake_service.url, "--json", str(out)]
    proc = _popen(cmd, dict(os.environ, ADMIN_TOKEN=ADMIN_TOKEN), log)
    try:
        with contextlib.suppress(AssertionError):  # the asserts below show the log
            await wait_until(lambda: out.exists() or proc.poll() is not None, "the cutover", 60)
        ops = await writer.finish()
        assert out.exists(), log.read_text()

        def verified_after() -> bool:
            try:
                return bool(json.loads(out.read_text())["verify_after"])
            except (ValueError, KeyError):
                return False  # being rewritten

        await wait_until(verified_after, "the full verify after the switch", 60)
        report = json.loads(out.read_text())
        assert report["verify_after_identical"] is True
        assert report["command"] == "db cutover"
        assert report["schema_version"] == 1
        assert report["identical"] is True
        assert report["method"] == "maintenance"
        assert report["write_pause_seconds"] > 0
        assert fake_service.maintenance is True  # the old side stays read-only
        assert ("POST", 1) in fake_service.calls
        assert ops["refused"] > 0
        assert (
            await verify(with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name))
        ).identical

        # After the switch the app writes to the new side; the reverse sync carries it back.
        new_id = ObjectId()
        await second_client[fresh_name].games.insert_one(game_doc(99, size=50) | {"_id": new_id})
        await second_client[fresh_name].users.update_one(
            {"_id": "user-3"}, {"$set": {"after_switch": True}}
        )

        async def carried_back() -> bool:
            back = await mongo_client[fresh_name].games.find_one({"_id": new_id})
            user = await mongo_client[fresh_name].users.find_one({"_id": "user-3"})
            return back is not None and user is not None and bool(user.get("after_switch"))

        try:
            await wait_until(carried_back, "the reverse sync carrying new writes back", 20)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {log.read_text()[-2000:]}") from None
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()[-2000:]


async def test_cutover_reconciles_changes_that_sent_no_event(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
) -> None:
    # Like Cosmos DB's RU API, which sends no delete events: the stop command itself removes
    # documents from the target behind the sync's back, so only the _id reconcile sees them.
    await _seed(mongo_client, fresh_name)
    target = with_db(second_uri, fresh_name)
    script = (
        "import sys; from pymongo import MongoClient; "
        "c = MongoClient(sys.argv[1]); "
        f"ids = [d['_id'] for d in c['{fresh_name}'].games.find().limit(5)]; "
        f"[c['{fresh_name}'].games.delete_one({{'_id': i}}) for i in ids]"
    )
    switch = CommandSwitch(f"{sys.executable} -c \"{script}\" '{target}'")
    steps: list[str] = []
    report, _ = await cutover(with_db(mongo_uri, fresh_name), target, switch, step=steps.append)
    assert any("reconciling _id sets" in s for s in steps)
    assert report.identical
    games = next(c for c in report.collections if c["name"] == "games")
    assert games["source"] == games["target"] == 2000


async def test_cutover_that_does_not_verify_resumes_writes(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    # The last write before the stop (user-1 takes an address) cannot be applied: behind the
    # sync's back, another user on the target holds that address under the unique index. The
    # pause's re-check must catch it, and the cutover must give the old side its writes back
    # (--start-command) and fail loudly, naming the refused write.
    await _seed(mongo_client, fresh_name)
    users = mongo_client[fresh_name].users
    for i in range(20):
        await users.update_one({"_id": f"user-{i}"}, {"$set": {"email": f"u{i}@x"}})
    await users.create_index("email", unique=True)
    source, target = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    flag = tmp_path / "app-stopped"
    script = (
        "import sys; from pymongo import MongoClient; "
        "new = MongoClient(sys.argv[1]); old = MongoClient(sys.argv[2]); "
        f"new['{fresh_name}'].users.update_one({{'_id': 'user-2'}}, "
        "{'\\$set': {'email': 'taken@x'}}); "
        f"old['{fresh_name}'].users.update_one({{'_id': 'user-1'}}, "
        "{'\\$set': {'email': 'taken@x'}})"
    )
    switch = CommandSwitch(
        f"touch {flag} && {sys.executable} -c \"{script}\" '{target}' '{source}'", f"rm -f {flag}"
    )
    with pytest.raises(CutoverFailed, match='writes still failing: users: "user-1"') as failed:
        await cutover(source, target, switch)
    assert not flag.exists()  # writes resumed on the old side
    assert failed.value.verify is not None
    users_report = next(c for c in failed.value.verify.collections if c.name == "users")
    assert users_report.different.sample == ['"user-1"']
    assert failed.value.report.identical is False
    assert failed.value.report.ready_at == ""


async def test_the_verify_after_the_switch_finds_what_the_pause_cannot_see(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
) -> None:
    """A write to the new side behind the sync's back *during* the pause, on a document nobody
    changed since the full comparison, is invisible to the pause's re-check (same counts): the
    full verify after the switch finds it, and sets apart what the new app wrote since."""
    await _seed(mongo_client, fresh_name)
    source, target = with_db(mongo_uri, fresh_name), with_db(second_uri, fresh_name)
    script = (
        "import sys; from pymongo import MongoClient; c = MongoClient(sys.argv[1]); "
        f"c['{fresh_name}'].users.update_one({{'_id': 'user-1'}}, {{'\\$set': {{'x': 1}}}})"
    )
    switch = CommandSwitch(f"{sys.executable} -c \"{script}\" '{target}'")
    report, _ = await cutover(source, target, switch)
    assert report.identical  # the pause could not see it
    # The new app's first writes, after READY: not differences.
    await second_client[fresh_name].users.update_one({"_id": "user-5"}, {"$set": {"new": True}})
    await second_client[fresh_name].games.insert_one(game_doc(5000, size=50))
    await verify_after(source, target, report)
    assert report.verify_after is True
    assert report.verify_after_identical is False
    assert report.identical is False
    assert report.verify_after_differences == {"users": ['"user-1"']}
    assert report.verify_after_explained == 2
    result = report.to_result()
    assert result.verify_after_differences == {"users": ['"user-1"']}
