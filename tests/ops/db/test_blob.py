"""Backups in Blob Storage (Azurite): round trip, layout, manifest, retention, a killed upload,
damaged blobs, the test restore, and the account-URL form."""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bson
import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient
from typer.testing import CliRunner, Result

from paletai.db.client import Client
from paletai.ops.db.blob import (
    MANIFEST,
    BackupManifest,
    BackupStore,
    StoredBackup,
    backup_to_blob,
    choose_backup,
    plan_retention,
    restore_from_blob,
)
from paletai.ops.db.cli import db_app
from paletai.ops.db.common import RAW_CODEC, index_shape
from paletai.ops.db.namespaces import NamespaceMapper
from paletai.ops.db.restore import restore
from paletai.ops.db.verify import verify
from paletai.ops.errors import OpsError
from paletai.ops.results import DbBackupResult, DbRestoreResult
from tests.ops.conftest import game_doc, rich_docs, with_db

runner = CliRunner()
UTC = dt.UTC


async def invoke(args: list[str], **kwargs: Any) -> Result:
    """The CLI in a thread: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(runner.invoke, db_app, args, **kwargs)


async def _seed(client: Client, name: str, games: int = 300) -> None:
    db = client[name]
    await db.games.insert_many([game_doc(i) for i in range(games)])
    await db.games.create_index([("created_at", -1), ("likes_count", -1)])
    await db.users.insert_many(rich_docs())
    await db.users.create_index("text", unique=True)
    await db.users.create_index("when", expireAfterSeconds=10**9)


async def _raw_docs(client: Client, db: str, coll: str) -> dict[bytes, bytes]:
    raw = client.get_database(db, codec_options=RAW_CODEC)[coll]
    return {bson.encode({"_id": d["_id"]}): bytes(d.raw) async for d in raw.find()}


def _container(conn: str, name: str) -> ContainerClient:
    return BlobServiceClient.from_connection_string(conn).get_container_client(name)


def _names(conn: str, container: str) -> list[str]:
    return sorted(str(b.name) for b in _container(conn, container).list_blobs())


async def test_backup_to_blob_and_restore_from_blob_round_trip(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    await _seed(mongo_client, fresh_name)
    source = with_db(mongo_uri, fresh_name)
    out = tmp_path / "backup.json"
    done = await invoke(
        ["backup", "--uri", source, "--to-blob", azurite, "--container", container_name]
        + ["--json", str(out)],
    )
    assert done.exit_code == 0, done.output
    result = DbBackupResult.model_validate_json(out.read_text())
    assert result.blob is not None
    folder = result.blob.name
    assert folder.startswith(f"paletai-{fresh_name}-")
    assert folder.endswith("Z")
    # Stock `mongodump --gzip --out` layout, manifest beside it.
    assert _names(azurite, container_name) == sorted(
        f"{folder}/{name}"
        for name in [
            "prelude.json",
            MANIFEST,
            f"{fresh_name}/games.bson.gz",
            f"{fresh_name}/games.metadata.json.gz",
            f"{fresh_name}/users.bson.gz",
            f"{fresh_name}/users.metadata.json.gz",
        ]
    )
    blobs = _container(azurite, container_name)
    manifest = BackupManifest.model_validate_json(
        blobs.download_blob(f"{folder}/{MANIFEST}").readall()
    )
    assert manifest.database == fresh_name
    assert "@" not in manifest.source
    assert manifest.source
    assert {c.name: c.documents for c in manifest.collections} == {"games": 300, "users": 3}
    users_gz = blobs.download_blob(f"{folder}/{fresh_name}/users.bson.gz").readall()
    assert manifest.file(f"{fresh_name}/users.bson.gz").size == len(users_gz)
    # The blob holds exactly the bytes the server returned.
    dumped = bson.decode_all(gzip.decompress(users_gz), RAW_CODEC)
    assert {bson.encode({"_id": d["_id"]}): bytes(d.raw) for d in dumped} == await _raw_docs(
        mongo_client, fresh_name, "users"
    )

    restored_json = tmp_path / "restore.json"
    done = await invoke(
        ["restore", "--uri", with_db(second_uri, fresh_name), "--from-blob", azurite]
        + ["--container", container_name, "--latest", "--json", str(restored_json)],
    )
    assert done.exit_code == 0, done.output
    restored = DbRestoreResult.model_validate_json(restored_json.read_text())
    assert restored.ok
    assert restored.from_blob == folder
    for coll in ("games", "users"):
        assert await _raw_docs(second_client, fresh_name, coll) == await _raw_docs(
            mongo_client, fresh_name, coll
        )
    report = await verify(source, with_db(second_uri, fresh_name))
    assert report.identical, report.as_dict()
    cursor = await second_client[fresh_name].users.list_indexes()
    shapes = {index_shape(ix) for ix in await cursor.to_list()}
    assert any(s.key == (("text", "1"),) for s in shapes)
    assert any(s.ttl == 10**9 for s in shapes)

    # The folder, downloaded as it is, is a dump the directory restore (stock layout) reads.
    local = tmp_path / "downloaded"
    for name in _names(azurite, container_name):
        path = local / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blobs.download_blob(name).readall())
    again = await restore(
        mongo_uri,
        local / folder,
        mapper=NamespaceMapper(ns_from=[f"{fresh_name}.*"], ns_to=[f"{fresh_name}_dl.*"]),
    )
    try:
        assert again.total("inserted") == 303
    finally:
        await mongo_client.drop_database(f"{fresh_name}_dl")


async def test_account_url_without_a_credential_is_one_clear_line(
    mongo_client: Client, mongo_uri: str, fresh_name: str, tmp_path: Path, fake_az: Any
) -> None:
    await mongo_client[fresh_name].games.insert_one(game_doc(1))
    # No managed identity, no environment credentials, and `az` answers "not logged in".
    fake_az.respond(
        "account get-access-token", exit_code=1, stderr="ERROR: Please run 'az login' to setup."
    )
    done = await invoke(
        ["backup", "--uri", with_db(mongo_uri, fresh_name)]
        + ["--to-blob", "https://nosuchaccount.blob.core.windows.net", "--container", "backups"],
        env={"AZURE_CONFIG_DIR": str(tmp_path / "az"), "IDENTITY_ENDPOINT": ""},
    )
    assert done.exit_code == 2, done.output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: cannot sign in to https://nosuchaccount.blob")
    assert "az login" in lines[0]
    assert "connection string" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--to-blob", "AccountName=x;nonsense", "--container", "abc"],
            "neither a storage connection string",
        ),
        (["--to-blob", "UseDevelopmentStorage=true"], "needs --container NAME"),
        (["--to-blob", "x", "--container", "Bad_Name"], "not a blob container name"),
        (["--out", "d", "--to-blob", "x"], "one of --out DIR"),
        (["--out", "d", "--keep-daily", "3"], "go with --to-blob"),
        (
            ["--to-blob", "x", "--container", "abc", "--keep-daily", "0"],
            "would delete every backup",
        ),
    ],
)
def test_backup_to_blob_input_errors(args: list[str], message: str) -> None:
    done = runner.invoke(db_app, ["backup", "--uri", "mongodb://127.0.0.1:1/x", *args])
    assert done.exit_code == 2, done.output
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_restore_from_blob_needs_latest_or_name(azurite: str) -> None:
    base = ["restore", "--uri", "mongodb://127.0.0.1:1/x", "--from-blob", azurite]
    done = runner.invoke(db_app, [*base, "--container", "abc"])
    assert done.exit_code == 2
    assert "exactly one of --latest or --name" in done.stderr
    done = runner.invoke(db_app, [*base, "--container", "abc", "--latest", "--name", "n"])
    assert done.exit_code == 2
    assert "exactly one of --latest or --name" in done.stderr


def _backup(name: str, stamp: str, *, complete: bool = True) -> StoredBackup:
    started = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return StoredBackup(f"paletai-db-{started:%Y%m%dT%H%M%SZ}", "db", started, complete)


def test_retention_keeps_the_newest_per_day_and_per_week() -> None:
    backups = [
        _backup("a", "2024-06-17 23:00"),  # Monday, ISO week 25
        _backup("b", "2024-06-17 02:00"),
        _backup("c", "2024-06-16 02:00"),  # Sunday, week 24
        _backup("d", "2024-06-15 02:00"),
        _backup("e", "2024-06-14 02:00"),
        _backup("f", "2024-06-09 02:00"),  # Sunday, week 23
        _backup("g", "2024-06-08 02:00"),
        _backup("h", "2024-06-02 02:00"),  # week 22
        _backup("i", "2024-05-26 02:00"),  # week 21
        _backup("x", "2024-06-16 05:00", complete=False),  # old incomplete: goes
        _backup("y", "2024-06-17 22:00", complete=False),  # fresh incomplete: may be uploading
    ]
    now = dt.datetime(2024, 6, 18, 1, 0, tzinfo=UTC)
    plan = plan_retention(backups, keep_daily=3, keep_weekly=3, now=now)
    kept = sorted(b.started.strftime("%m-%d %H") for b in plan.keep)
    # Days: 06-17 (newest: 23h), 06-16, 06-15. Weeks: 25 (06-17 23h), 24 (06-16), 23 (06-09).
    assert kept == ["06-09 02", "06-15 02", "06-16 02", "06-17 23"]
    deleted = sorted(b.started.strftime("%m-%d %H") for b in plan.delete)
    assert deleted == ["05-26 02", "06-02 02", "06-08 02", "06-14 02", "06-17 02"]
    assert [b.started.strftime("%m-%d %H") for b in plan.delete_incomplete] == ["06-16 05"]
    # A bigger weekly window reaches the older weeks, newest of each.
    plan = plan_retention(backups, keep_daily=1, keep_weekly=5, now=now)
    kept = sorted(b.started.strftime("%m-%d %H") for b in plan.keep)
    assert kept == ["05-26 02", "06-02 02", "06-09 02", "06-16 02", "06-17 23"]


async def test_retention_prunes_real_backups_and_says_what_it_deleted(
    mongo_client: Client,
    mongo_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
) -> None:
    await mongo_client[fresh_name].games.insert_many([game_doc(i) for i in range(5)])
    source = with_db(mongo_uri, fresh_name)
    store = BackupStore.open(azurite, container_name)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    made = []
    for days in (9, 8, 2, 1):  # two old days, then yesterday and the day before
        made.append(await backup_to_blob(source, store, started=now - dt.timedelta(days=days)))
    # An upload that died three days ago: blobs without a manifest.
    dead = f"paletai-{fresh_name}-{now - dt.timedelta(days=3):%Y%m%dT%H%M%SZ}"
    _container(azurite, container_name).upload_blob(f"{dead}/prelude.json", b"{}")
    # Another database's backups are not this one's to prune.
    other = f"paletai-{fresh_name}x-{now - dt.timedelta(days=30):%Y%m%dT%H%M%SZ}"
    _container(azurite, container_name).upload_blob(f"{other}/{MANIFEST}", b"{}")

    done = await invoke(
        ["backup", "--uri", source, "--to-blob", azurite, "--container", container_name]
        + ["--keep-daily", "2", "--keep-weekly", "1"],
    )
    assert done.exit_code == 0, done.output
    listed = {b.name: b.complete for b in store.list_backups(fresh_name)}
    newest = max(listed)
    # Kept: today's (new), yesterday's; the week's newest is today's.
    assert sorted(listed) == sorted([made[3].figures.name, newest])
    assert all(listed.values())
    for gone in (made[0], made[1], made[2]):
        assert f"deleted {gone.figures.name}" in done.stderr
    assert f"deleted {dead} (incomplete" in done.stderr
    assert other in {b.name for b in store.list_backups()}
    store.close()


def _start_backup(source: str, conn: str, container: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "paletai.ops.db.cli", "backup", "--uri", source]
    cmd += ["--to-blob", conn, "--container", container]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


@pytest.mark.slow
async def test_a_killed_upload_is_never_a_complete_backup(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    db = mongo_client[fresh_name]
    await db.a_small.insert_many([{"_id": i, "v": i} for i in range(10)])
    source = with_db(mongo_uri, fresh_name)
    store = BackupStore.open(azurite, container_name)
    first = await backup_to_blob(
        source, store, started=dt.datetime.now(UTC) - dt.timedelta(hours=1)
    )
    # Then a collection big enough (random text: gzip cannot shrink it) to kill mid-upload.
    await db.games.insert_many([{"_id": i, "blob": os.urandom(1500).hex()} for i in range(6000)])
    proc = _start_backup(source, azurite, container_name, tmp_path / "backup.log")
    try:
        deadline = time.monotonic() + 60
        started = []
        while time.monotonic() < deadline and proc.poll() is None:
            # The small collection is in: the big one is being uploaded.
            started = [
                n
                for n in _names(azurite, container_name)
                if n.endswith(f"{fresh_name}/a_small.bson.gz") and first.figures.name not in n
            ]
            if started:
                break
            await asyncio.sleep(0.02)
        assert started, (tmp_path / "backup.log").read_text()
        assert proc.poll() is None, "the backup finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = started[0].split("/")[0]
    backups = {b.name: b.complete for b in store.list_backups(fresh_name)}
    assert backups == {first.figures.name: True, killed: False}
    assert not any(n.startswith(f"{killed}/{MANIFEST}") for n in _names(azurite, container_name))
    # --latest takes the previous complete backup; the killed one by name is refused.
    assert choose_backup(store, name=None, latest=True, database=fresh_name) == first.figures.name
    with pytest.raises(OpsError, match="incomplete: it has no manifest.json"):
        choose_backup(store, name=killed, latest=False, database=None)
    done = await invoke(
        ["restore", "--uri", with_db(second_uri, fresh_name), "--from-blob", azurite]
        + ["--container", container_name, "--name", killed],
    )
    assert done.exit_code == 2
    assert "is incomplete" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = await invoke(
        ["restore", "--uri", with_db(second_uri, fresh_name), "--from-blob", azurite]
        + ["--container", container_name, "--latest"],
    )
    assert done.exit_code == 0, done.output
    assert f"restoring {first.figures.name}" in done.stderr
    assert await second_client[fresh_name].a_small.count_documents({}) == 10
    assert "games" not in await second_client[fresh_name].list_collection_names()
    store.close()


async def test_a_damaged_blob_is_refused_against_the_manifest(
    mongo_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
) -> None:
    await _seed(mongo_client, fresh_name, games=50)
    store = BackupStore.open(azurite, container_name)
    made = await backup_to_blob(with_db(mongo_uri, fresh_name), store)
    name = made.figures.name
    blobs = _container(azurite, container_name)
    path = f"{name}/{fresh_name}/games.bson.gz"
    good = blobs.download_blob(path).readall()
    target = with_db(second_uri, fresh_name)
    # Same size, same documents, other bytes (the gzip header's mtime): only the sha256 tells.
    data = bytearray(good)
    data[4] ^= 0xFF
    blobs.upload_blob(path, bytes(data), overwrite=True)
    with pytest.raises(OpsError, match=r"games.bson.gz does not match its manifest.*sha256"):
        await restore_from_blob(target, store, name, drop=True)
    # A damaged byte inside: gzip's CRC stops the stream.
    data = bytearray(good)
    data[-5] ^= 0xFF
    blobs.upload_blob(path, bytes(data), overwrite=True)
    with pytest.raises(OpsError, match=r"games.bson.gz is damaged"):
        await restore_from_blob(target, store, name, drop=True)
    # Shorter than the manifest says: refused before anything is written.
    blobs.upload_blob(path, good[:-100], overwrite=True)
    with pytest.raises(OpsError, match="another size than its manifest"):
        await restore_from_blob(target, store, name, drop=True)
    store.close()


async def test_test_restore_verifies_then_drops_the_scratch_database(
    mongo_client: Client,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    await _seed(mongo_client, fresh_name, games=120)
    out = tmp_path / "backup.json"
    done = await invoke(
        ["backup", "--uri", with_db(mongo_uri, fresh_name), "--to-blob", azurite]
        + ["--container", container_name, "--test-restore", second_uri, "--json", str(out)],
    )
    assert done.exit_code == 0, done.output
    trial = DbBackupResult.model_validate_json(out.read_text()).test_restore
    assert trial is not None
    assert trial.ok
    assert trial.matched_manifest
    assert trial.verify_identical
    assert trial.dropped
    assert trial.restored_documents == 123
    assert trial.database.startswith(f"{fresh_name}_restoretest_")
    assert trial.database not in await second_client.list_database_names()
    assert "test restore passed" in done.stderr
    data = json.loads(out.read_text())
    assert data["test_restore"]["index_differences"] == 0


REAL_AZ = Path(__file__).resolve().parents[3] / "tools" / "bin" / "az"


def _real_az(*args: str, config: Path) -> Any:
    env = {
        **os.environ,
        "AZURE_CONFIG_DIR": str(config),  # logged in nowhere: the connection string is enough
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
    }
    done = subprocess.run(
        [str(REAL_AZ), *args, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.mark.slow
async def test_the_real_az_lists_and_downloads_a_backup_for_the_documented_restore(
    mongo_client: Client,
    mongo_uri: str,
    fresh_name: str,
    azurite: str,
    container_name: str,
    tmp_path: Path,
) -> None:
    """docs/db-operations.md's manual restore: `az storage blob list`, then `download-batch` of
    one folder, which is a `mongodump --gzip --out` directory (our directory restore reads it as
    stock mongorestore does)."""
    assert REAL_AZ.exists(), "the Azure CLI is not installed: run `make tools`"
    await _seed(mongo_client, fresh_name, games=40)
    store = BackupStore.open(azurite, container_name)
    made = await backup_to_blob(with_db(mongo_uri, fresh_name), store)
    store.close()
    folder = made.figures.name
    config = tmp_path / "az"
    listed = await asyncio.to_thread(
        _real_az,
        *["storage", "blob", "list", "--connection-string", azurite],
        *["--container-name", container_name, "--prefix", f"{folder}/"],
        config=config,
    )
    sizes = {b["name"]: b["properties"]["contentLength"] for b in listed}
    expected = {f"{folder}/{f.name}": f.size for f in made.manifest.files}
    assert {k: v for k, v in sizes.items() if not k.endswith(MANIFEST)} == expected
    assert f"{folder}/{MANIFEST}" in sizes
    out = tmp_path / "restore-me"
    out.mkdir()
    await asyncio.to_thread(
        _real_az,
        *["storage", "blob", "download-batch", "--connection-string", azurite],
        *["--source", container_name, "--destination", str(out), "--pattern", f"{folder}/*"],
        config=config,
    )
    assert (out / folder / f"{fresh_name}/games.bson.gz").exists()
    scratch = f"{fresh_name}_az"
    try:
        restored = await restore(
            mongo_uri,
            out / folder,
            mapper=NamespaceMapper(ns_from=[f"{fresh_name}.*"], ns_to=[f"{scratch}.*"]),
        )
        assert restored.ok
        assert restored.total("inserted") == 43
    finally:
        await mongo_client.drop_database(scratch)
