"""The stock MongoDB Database Tools and ours, both ways, over real files, pipes and the wire.

Runs when `tools/mongo-tools/bin` (or PALETAI_MONGO_TOOLS) holds `mongodump`, `mongorestore` and
`bsondump`: `scripts/build-mongo-tools.sh` builds them there from a mongo-tools source tree. A
fresh machine here cannot fetch that source, so there `make test` skips this module; the format
tests in `test_archive.py` and `test_backup_restore.py` (readers and writers written from the
spec) carry the compatibility there. The last run with the tools is in docs/db-operations.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from paletai.db import embedded
from paletai.db.client import Client, make_client
from paletai.ops.db.common import index_shape
from paletai.ops.db.verify import verify
from tests.ops.conftest import game_doc, rich_docs, with_db
from tests.process_helpers import paletai_db_child

# Where scripts/build-mongo-tools.sh puts them, unless PALETAI_MONGO_TOOLS says elsewhere.
TOOLS = Path(
    os.environ.get("PALETAI_MONGO_TOOLS")
    or Path(__file__).resolve().parents[3] / "tools" / "mongo-tools" / "bin"
)
STOCK = ("mongodump", "mongorestore", "bsondump")

pytestmark = pytest.mark.skipif(
    not all((TOOLS / tool).is_file() for tool in STOCK),
    reason=f"the stock tools cross-check needs mongodump, mongorestore and bsondump in {TOOLS}"
    " (scripts/build-mongo-tools.sh builds them; PALETAI_MONGO_TOOLS=DIR for elsewhere)",
)

GAMES = 300

# Stock mongorestore asks buildInfo for `versionArray`, which the stand-in leaves out (it answers
# buildInfo with its serverStatus), and stops: "error getting server version: buildInfo.versionArray
# had fewer than 3 elements". MongoDB always sends it (tests/db/test_conformance.py). For the
# tools to get as far as the data, mongorestore's target here is a stand-in whose buildInfo adds
# the array that belongs to its "version" 7.0.0; nothing else is changed.
_WITH_VERSION_ARRAY = """
from nx_27017.handler import NeoSQLiteHandler
answer = NeoSQLiteHandler._handle_server_status
def with_version_array(self, request_id, db):
    request_id, reply = answer(self, request_id, db)
    reply.setdefault("versionArray", [int(p) for p in reply["version"].split(".")] + [0])
    return request_id, reply
NeoSQLiteHandler._handle_server_status = with_version_array
from nx_27017.nx_27017 import main
main()
"""


@pytest.fixture(scope="module")
def restore_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            embedded, "_server_command", lambda: [sys.executable, "-c", _WITH_VERSION_ARRAY]
        )
        server = embedded.EmbeddedMongo(tmp_path_factory.mktemp("mongorestore-target"))
        server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
async def restore_client(restore_uri: str) -> AsyncIterator[Client]:
    client = make_client(restore_uri)
    try:
        yield client
    finally:
        await client.close()


def stock(tool: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a stock tool; its output in the assertion message when it fails."""
    done = subprocess.run(
        [str(TOOLS / tool), *args], input=stdin, capture_output=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{tool} {' '.join(args)}: {done.stderr.decode()[-2000:]}"
    return done


def ours(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """`paletai db ...` as its own process, as an operator runs it."""
    base, env = paletai_db_child()
    done = subprocess.run(
        [*base, *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"paletai db {' '.join(args)}: {done.stderr.decode()[-2000:]}"
    return done


@pytest.fixture
async def source(mongo_client: Client, mongo_uri: str, fresh_name: str) -> str:
    """The source database's URI, seeded: games with a compound index, users with every type the
    stand-in holds and a unique index, sessions with a TTL index, and an empty collection."""
    db = mongo_client[fresh_name]
    await db.games.insert_many([game_doc(i) for i in range(GAMES)])
    await db.games.create_index([("created_at", -1), ("likes_count", -1)])
    await db.users.insert_many(rich_docs())
    await db.users.create_index("text", unique=True)
    await db.sessions.insert_one({"_id": "s1", "at": dt.datetime(2099, 1, 2, tzinfo=dt.UTC)})
    await db.sessions.create_index("at", expireAfterSeconds=3600)
    await db.create_collection("empty")
    return with_db(mongo_uri, fresh_name)


async def _identical(src: str, dst: str, client: Client, name: str) -> None:
    report = await verify(src, dst)
    assert report.identical, report.as_dict()
    assert {c.name for c in report.collections} == {"games", "users", "sessions", "empty"}
    shapes = {
        index_shape(ix) for ix in await (await client[name].sessions.list_indexes()).to_list()
    }
    assert any(s.key == (("at", "1"),) and s.ttl == 3600 for s in shapes), shapes


@pytest.mark.parametrize("gzip", [False, True])
async def test_stock_mongorestore_restores_our_dump_that_bsondump_accepts(
    source: str,
    restore_client: Client,
    restore_uri: str,
    fresh_name: str,
    tmp_path: Path,
    gzip: bool,
) -> None:
    dst = with_db(restore_uri, fresh_name)
    ours("backup", "--uri", source, "--out", str(tmp_path / "dump"), *(["--gzip"] if gzip else []))
    if not gzip:
        for path in sorted((tmp_path / "dump" / fresh_name).glob("*.bson")):
            checked = stock("bsondump", "--objcheck", "--quiet", str(path))
            assert checked.stdout.count(b"\n") == {"games": GAMES, "users": 3, "sessions": 1}.get(
                path.stem, 0
            ), path.name
    stock(
        "mongorestore",
        f"--uri={restore_uri}",
        f"--nsInclude={fresh_name}.*",
        *(["--gzip"] if gzip else []),
        str(tmp_path / "dump"),
    )
    await _identical(source, dst, restore_client, fresh_name)


@pytest.mark.parametrize("gzip", [False, True])
async def test_our_restore_reads_a_stock_mongodump_directory(
    source: str,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    tmp_path: Path,
    gzip: bool,
) -> None:
    dst = with_db(second_uri, fresh_name)
    out = tmp_path / "dump"
    stock(
        "mongodump",
        f"--uri={mongo_uri}",
        f"--db={fresh_name}",
        f"--out={out}",
        *(["--gzip"] if gzip else []),
    )
    ours("restore", "--uri", dst, "--dir", str(out))
    await _identical(source, dst, second_client, fresh_name)


@pytest.mark.parametrize("gzip", [False, True])
async def test_stock_mongorestore_reads_our_archive(
    source: str,
    restore_client: Client,
    restore_uri: str,
    fresh_name: str,
    tmp_path: Path,
    gzip: bool,
) -> None:
    dst = with_db(restore_uri, fresh_name)
    flag = ["--gzip"] if gzip else []
    archive = ours("backup", "--uri", source, "--archive", "-", *flag).stdout
    stock("mongorestore", f"--uri={restore_uri}", "--archive", *flag, stdin=archive)
    await _identical(source, dst, restore_client, fresh_name)


@pytest.mark.parametrize("gzip", [False, True])
async def test_stock_mongodump_archive_pipes_into_our_restore(
    source: str,
    second_client: Client,
    mongo_uri: str,
    second_uri: str,
    fresh_name: str,
    gzip: bool,
) -> None:
    """mongodump writes four collections at once (--numParallelCollections 4): their segments
    interleave in the archive, which our reader must follow."""
    dst = with_db(second_uri, fresh_name)
    flag = ["--gzip"] if gzip else []
    archive = await asyncio.to_thread(
        stock, "mongodump", f"--uri={mongo_uri}", f"--db={fresh_name}", "--archive", *flag
    )
    restored = ours("restore", "--uri", dst, "--archive", "-", *flag, stdin=archive.stdout)
    assert f"restored {GAMES + 4} documents" in restored.stderr.decode()
    await _identical(source, dst, second_client, fresh_name)


async def test_stock_mongorestore_replays_a_consistent_backup_taken_while_idle(
    source: str,
    restore_client: Client,
    restore_uri: str,
    fresh_name: str,
    tmp_path: Path,
) -> None:
    """Nothing changed during the backup: its oplog.bson is empty, which stock
    `mongorestore --oplogReplay` takes as a dump with nothing to replay."""
    dst = with_db(restore_uri, fresh_name)
    out = tmp_path / "dump"
    ours("backup", "--uri", source, "--out", str(out), "--consistent")
    assert (out / "oplog.bson").read_bytes() == b""
    stock("mongorestore", f"--uri={restore_uri}", "--oplogReplay", str(out))
    await _identical(source, dst, restore_client, fresh_name)
