"""Hand-written results, in the shapes the commands' `--json` write (trimmed to what matters)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SETTINGS_DIFF: dict[str, Any] = {
    "command": "settings diff",
    "target": "old-app-settings.json -> new-app-settings.json",
    "ok": True,
    "started_at": "2026-11-24T10:00:00+00:00",
    "seconds": 0.01,
    "checks": [
        {
            "name": "settings valid (new-app-settings.json)",
            "ok": True,
            "seconds": 0.0,
            "detail": "PaletAI's Settings accept these values",
        }
    ],
    "diff": {
        "added": [],
        "removed": [],
        "changed": [{"name": "DB_PATH", "secret": True}],
        "unchanged": 11,
    },
}

DB_SYNC: dict[str, Any] = {
    "caught_up": True,
    "write_errors": 0,
    "collections": {
        "users": {"name": "users", "copied": 1000, "events": 12, "lag": 0.04, "write_errors": 0},
        "games": {"name": "games", "copied": 10000, "events": 40, "lag": 0.1, "write_errors": 0},
    },
}

DB_CUTOVER: dict[str, Any] = {
    "source": "old-cluster.example.net/paletai",
    "target": "new-cluster.example.net/paletai",
    "method": "maintenance",
    "started_at": "2026-11-24T10:05:00.000+00:00",
    "writes_stopped_at": "2026-11-24T10:06:00.000+00:00",
    "ready_at": "2026-11-24T10:06:23.100+00:00",
    "write_pause_seconds": 23.1,
    "stop_call_seconds": 0.2,
    "drain_seconds": 1.9,
    "verify_seconds": 21.0,
    "initial_sync_seconds": 60.0,
    "identical": True,
    "reverse": True,
    "collections": [
        {"name": "games", "source": 10000, "target": 10000},
        {"name": "users", "source": 1000, "target": 1000},
    ],
}


def _coll(name: str, count: int, missing: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "source_count": count,
        "target_count": count - missing,
        "in_source": True,
        "in_target": True,
        "missing_in_target": {"count": missing, "sample": ['"x"'] * missing},
        "extra_in_target": {"count": 0, "sample": []},
        "different": {"count": 0, "sample": []},
        "indexes_missing_in_target": [],
        "indexes_extra_in_target": [],
        "merge": "sorted",
        "identical": missing == 0,
    }


DB_VERIFY: dict[str, Any] = {
    "source_db": "paletai",
    "target_db": "paletai",
    "collections": [_coll("games", 10000), _coll("likes", 5000), _coll("users", 1000)],
    "seconds": 4.2,
    "identical": True,
}

STORAGE_COPY: dict[str, Any] = {
    "copy": {
        "source": "https://oldacct.blob.core.windows.net/game-images",
        "destination": "https://newacct.blob.core.windows.net/game-images",
        "total": 10000,
        "copied": 10000,
        "skipped": 0,
        "failed": 0,
        "bytes_copied": 52428800,
        "bytes_skipped": 0,
        "server_side": 10000,
        "streamed": 0,
        "destination_public": True,
        "failures": {},
    },
    "rewrite": {
        "old_prefix": "https://oldacct.blob.core.windows.net/game-images/",
        "new_prefix": "https://newacct.blob.core.windows.net/game-images/",
        "rewritten": 10000,
        "already": 0,
        "missing": 0,
    },
}


def _check(name: str, detail: str, seconds: float = 0.05, ok: bool = True) -> dict[str, Any]:
    return {"name": name, "ok": ok, "seconds": seconds, "detail": detail}


MIGRATE_CHECK: dict[str, Any] = {
    "command": "migrate check",
    "target": "https://new-app.azurewebsites.net",
    "ok": True,
    "started_at": "2026-11-24T10:10:00+00:00",
    "seconds": 3.2,
    "checks": [
        _check("health", "healthy; database healthy, storage healthy, ai healthy", 0.03),
        _check("docs: Swagger UI", "Swagger UI page loads"),
        _check("docs: openapi.json endpoints", "all 15 contract endpoints listed"),
        _check("auth: register", "registered migration-check+1@example.com"),
        _check("auth: login (JSON)", "JSON {email, password}: bearer token"),
        _check("auth: login (OAuth2 form)", "OAuth2 form (username, password): bearer token"),
        _check("auth: /auth/me", "migration-check+1@example.com; prompts left today: 19"),
        _check("games: create", "task t1 queued"),
        _check("games: generation", "succeeded: game g1 after 1 attempt(s)", 1.2),
        _check("games: the game", "'Snake' by tester"),
        _check("image: cover", "PNG 2048 bytes (image/png) on Azure Blob Storage (account new)"),
        _check("play: sandboxed HTML", "HTML 1234 bytes, CSP sandboxed"),
        _check("feed: the game is listed", "the game is #1 in the feed, all fields populated"),
        _check("likes: like + unlike", "like x2 -> 1, unlike x2 -> 0 (idempotent)"),
        _check("notifications: subscribe", "subscribed and unsubscribed a test player id"),
    ],
    "image_location": "Azure Blob Storage (account newacct)",
}

MIGRATE_DNS: dict[str, Any] = {
    "command": "migrate dns",
    "target": "api.paletai.com",
    "ok": True,
    "started_at": "2026-11-24T10:12:00+00:00",
    "seconds": 0.4,
    "checks": [
        _check("dns: resolve host", "api.paletai.com -> 20.1.2.3"),
        _check("dns: points at target", "CNAME api.paletai.com -> new-app.azurewebsites.net"),
        _check("http: the app answers on host", "GET https://api.paletai.com/health: 200"),
    ],
}

MIGRATE_LOAD: dict[str, Any] = {
    "command": "migrate load",
    "target": "https://new-app.azurewebsites.net",
    "ok": True,
    "started_at": "2026-11-24T10:15:00+00:00",
    "seconds": 12.0,
    "checks": [
        _check("health", "healthy, version 0.1.0"),
        _check("games: create 5", "5 tasks queued by 1 test account(s)"),
        _check("games: generation", "5/5 succeeded, mean 1.1 s, slowest 1.5 s"),
        _check("games: images", "all 5 games have a PNG/JPEG cover"),
        _check("load: feed", "67 req, 30 req/s, p50 9 ms, p95 20 ms, p99 30 ms, errors 0", 0.0),
        _check("load: game", "67 req, 30 req/s, p50 8 ms, errors 0", 0.0),
        _check("load: health", "66 req, 30 req/s, p50 3 ms, errors 0", 0.0),
        _check("load: all requests done", "200/200 in 6.6 s (30.3 req/s)", 6.6),
        _check("load: average response time < 2 s", "average 11 ms over 200 requests", 0.0),
        _check("cleanup: delete the test games", "deleted 5 test games"),
    ],
    "load": {
        "requests": 200,
        "planned_requests": 200,
        "concurrency": 4,
        "seconds": 6.6,
        "requests_per_second": 30.3,
        "mean_ms": 11.2,
        "p50_ms": 8.0,
        "p95_ms": 20.0,
        "p99_ms": 30.0,
        "endpoints": {},
    },
}

ALL: dict[str, dict[str, Any]] = {
    "settings-diff.json": SETTINGS_DIFF,
    "db-sync.json": DB_SYNC,
    "db-cutover.json": DB_CUTOVER,
    "db-verify.json": DB_VERIFY,
    "storage-copy.json": STORAGE_COPY,
    "migrate-check.json": MIGRATE_CHECK,
    "migrate-dns.json": MIGRATE_DNS,
    "migrate-load.json": MIGRATE_LOAD,
}


def write(directory: Path, files: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_text(json.dumps(data, indent=2))
    return directory


def all_results() -> dict[str, dict[str, Any]]:
    return copy.deepcopy(ALL)


REHEARSE: dict[str, Any] = {
    "command": "migrate rehearse",
    "started_at": "2026-11-24T10:00:00+00:00",
    "seconds": 31.5,
    "ok": True,
    "traffic": {
        "requests": 234,
        "reads": 141,
        "read_errors": 0,
        "writes": 93,
        "by_target": {"old": 200, "new": 34},
        "acknowledged_games": 33,
        "acknowledged_likes": 55,
        "maintenance_503": 5,
        "unexpected_errors": 0,
        "unexpected_samples": [],
        "refused_window_seconds": 1.4,
        "refused_outside_pause": 0,
        "pause_window_seconds": 2.5,
        "lost_writes": 0,
        "lost_samples": [],
    },
}
