"""Results as the commands' `--json` write them, built from their models (trimmed)."""

from __future__ import annotations

from pathlib import Path

from paletai.ops.checks import names
from paletai.ops.cli import write_json
from paletai.ops.results import (
    BlobCopyFigures,
    ChangedSetting,
    CheckRecord,
    CountedCollection,
    DbCutoverResult,
    DbSyncResult,
    DbVerifyResult,
    IdSample,
    LoadFigures,
    MigrateCheckResult,
    MigrateDnsResult,
    MigrateLoadResult,
    OpsResult,
    RehearseResult,
    SettingsDiffFigures,
    SettingsDiffResult,
    StorageCopyResult,
    SyncedCollection,
    TrafficFigures,
    UrlRewriteFigures,
    VerifiedCollection,
)


def _check(name: str, detail: str, seconds: float = 0.05, ok: bool = True) -> CheckRecord:
    return CheckRecord(name=name, ok=ok, seconds=seconds, detail=detail)


def settings_diff() -> SettingsDiffResult:
    return SettingsDiffResult(
        target="old-app-settings.json -> new-app-settings.json",
        ok=True,
        started_at="2026-11-24T10:00:00+00:00",
        seconds=0.01,
        checks=[
            _check(
                f"{names.SETTINGS_VALID} (new-app-settings.json)",
                "PaletAI's Settings accept these values",
                0.0,
            )
        ],
        diff=SettingsDiffFigures(
            added=[],
            removed=[],
            changed=[ChangedSetting(name="DB_PATH", secret=True)],
            unchanged=11,
        ),
    )


def db_sync() -> DbSyncResult:
    return DbSyncResult(
        caught_up=True,
        write_errors=0,
        collections={
            "users": SyncedCollection(name="users", copied=1000, events=12, lag=0.04),
            "games": SyncedCollection(name="games", copied=10000, events=40, lag=0.1),
        },
    )


def db_cutover() -> DbCutoverResult:
    return DbCutoverResult(
        source="old-cluster.example.net/paletai",
        target="new-cluster.example.net/paletai",
        method="maintenance",
        started_at="2026-11-24T10:05:00.000+00:00",
        writes_stopped_at="2026-11-24T10:06:00.000+00:00",
        ready_at="2026-11-24T10:06:23.100+00:00",
        write_pause_seconds=23.1,
        stop_call_seconds=0.2,
        drain_seconds=1.9,
        verify_seconds=21.0,
        initial_sync_seconds=60.0,
        identical=True,
        reverse=True,
        collections=[
            CountedCollection(name="games", source=10000, target=10000),
            CountedCollection(name="users", source=1000, target=1000),
        ],
    )


def _coll(name: str, count: int, missing: int = 0) -> VerifiedCollection:
    return VerifiedCollection(
        name=name,
        source_count=count,
        target_count=count - missing,
        missing_in_target=IdSample(count=missing, sample=['"x"'] * missing),
        identical=missing == 0,
    )


def db_verify() -> DbVerifyResult:
    return DbVerifyResult(
        source_db="paletai",
        target_db="paletai",
        collections=[_coll("games", 10000), _coll("likes", 5000), _coll("users", 1000)],
        seconds=4.2,
        identical=True,
    )


def storage_copy() -> StorageCopyResult:
    return StorageCopyResult(
        copy_=BlobCopyFigures(
            source="https://oldacct.blob.core.windows.net/game-images",
            destination="https://newacct.blob.core.windows.net/game-images",
            total=10000,
            copied=10000,
            bytes_copied=52428800,
            server_side=10000,
            destination_public=True,
        ),
        rewrite=UrlRewriteFigures(
            old_prefix="https://oldacct.blob.core.windows.net/game-images/",
            new_prefix="https://newacct.blob.core.windows.net/game-images/",
            rewritten=10000,
        ),
    )


def migrate_check() -> MigrateCheckResult:
    return MigrateCheckResult(
        target="https://new-app.azurewebsites.net",
        ok=True,
        started_at="2026-11-24T10:10:00+00:00",
        seconds=3.2,
        checks=[
            _check(names.HEALTH, "healthy; database healthy, storage healthy, ai healthy", 0.03),
            _check(names.DOCS_SWAGGER, "Swagger UI page loads"),
            _check(names.DOCS_OPENAPI, "all 15 contract endpoints listed"),
            _check(names.AUTH_REGISTER, "registered migration-check+1@example.com"),
            _check(names.AUTH_LOGIN_JSON, "JSON {email, password}: bearer token"),
            _check(names.AUTH_LOGIN_FORM, "OAuth2 form (username, password): bearer token"),
            _check(names.AUTH_ME, "migration-check+1@example.com; prompts left today: 19"),
            _check(names.GAMES_CREATE, "task t1 queued"),
            _check(names.GAMES_GENERATION, "succeeded: game g1 after 1 attempt(s)", 1.2),
            _check(names.GAMES_THE_GAME, "'Snake' by tester"),
            _check(
                names.IMAGE_COVER, "PNG 2048 bytes (image/png) on Azure Blob Storage (account new)"
            ),
            _check(names.PLAY_SANDBOXED, "HTML 1234 bytes, CSP sandboxed"),
            _check(names.FEED_LISTED, "the game is #1 in the feed, all fields populated"),
            _check(names.LIKES, "like x2 -> 1, unlike x2 -> 0 (idempotent)"),
            _check(names.NOTIFICATIONS, "subscribed and unsubscribed a test player id"),
        ],
        image_location="Azure Blob Storage (account newacct)",
    )


def migrate_dns() -> MigrateDnsResult:
    return MigrateDnsResult(
        target="api.paletai.com",
        ok=True,
        started_at="2026-11-24T10:12:00+00:00",
        seconds=0.4,
        checks=[
            _check(names.DNS_RESOLVE, "api.paletai.com -> 20.1.2.3"),
            _check(
                names.DNS_POINTS_AT_TARGET, "CNAME api.paletai.com -> new-app.azurewebsites.net"
            ),
            _check(names.HTTP_ANSWERS_ON_HOST, "GET https://api.paletai.com/health: 200"),
        ],
    )


def migrate_load() -> MigrateLoadResult:
    load = names.LOAD_PREFIX
    return MigrateLoadResult(
        target="https://new-app.azurewebsites.net",
        ok=True,
        started_at="2026-11-24T10:15:00+00:00",
        seconds=12.0,
        checks=[
            _check(names.HEALTH, "healthy, version 0.1.0"),
            _check(f"{names.GAMES_CREATE} 5", "5 tasks queued by 1 test account(s)"),
            _check(names.GAMES_GENERATION, "5/5 succeeded, mean 1.1 s, slowest 1.5 s"),
            _check(names.GAMES_IMAGES, "all 5 games have a PNG/JPEG cover"),
            _check(
                f"{load}feed", "67 req, 30 req/s, p50 9 ms, p95 20 ms, p99 30 ms, errors 0", 0.0
            ),
            _check(f"{load}game", "67 req, 30 req/s, p50 8 ms, errors 0", 0.0),
            _check(f"{load}health", "66 req, 30 req/s, p50 3 ms, errors 0", 0.0),
            _check(names.LOAD_ALL_DONE, "200/200 in 6.6 s (30.3 req/s)", 6.6),
            _check(f"{names.LOAD_AVERAGE}2 s", "average 11 ms over 200 requests", 0.0),
            _check(names.CLEANUP_GAMES, "deleted 5 test games"),
        ],
        load=LoadFigures(
            requests=200,
            planned_requests=200,
            concurrency=4,
            seconds=6.6,
            requests_per_second=30.3,
            mean_ms=11.2,
            p50_ms=8.0,
            p95_ms=20.0,
            p99_ms=30.0,
        ),
    )


def rehearse() -> RehearseResult:
    return RehearseResult(
        started_at="2026-11-24T10:00:00+00:00",
        seconds=31.5,
        ok=True,
        traffic=TrafficFigures(
            requests=234,
            reads=141,
            read_errors=0,
            writes=93,
            by_target={"old": 200, "new": 34},
            acknowledged_games=33,
            acknowledged_likes=55,
            maintenance_503=5,
            unexpected_errors=0,
            refused_window_seconds=1.4,
            refused_outside_pause=0,
            pause_window_seconds=2.5,
            lost_writes=0,
        ),
    )


def all_results() -> dict[str, OpsResult]:
    """A fresh set of results (tests change them), by file name."""
    return {
        "settings-diff.json": settings_diff(),
        "db-sync.json": db_sync(),
        "db-cutover.json": db_cutover(),
        "db-verify.json": db_verify(),
        "storage-copy.json": storage_copy(),
        "migrate-check.json": migrate_check(),
        "migrate-dns.json": migrate_dns(),
        "migrate-load.json": migrate_load(),
    }


ALL = all_results()


def write(directory: Path, files: dict[str, OpsResult]) -> Path:
    """Write each result as its command's `--json` would (ops.cli.write_json)."""
    for name, result in files.items():
        write_json(directory / name, result)
    return directory
