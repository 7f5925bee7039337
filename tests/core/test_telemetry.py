"""Telemetry to a fake Application Insights ingestion endpoint.

OpenTelemetry's providers are process-global, so the configured part runs in a subprocess
(`python -m tests.core.test_telemetry`, the `probe` below) that posts to a fake ingestion server
in this process.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from paletai.config import Settings
from paletai.core import telemetry

REPO = Path(__file__).resolve().parents[2]
ROLE = "paletai-probe"


class Ingestion:
    """Records the envelopes the Azure Monitor exporter posts (to /v2.1/track)."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()
        ingestion = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                text = raw.decode()
                items = (
                    json.loads(text)
                    if text.lstrip().startswith("[")
                    else [json.loads(line) for line in text.splitlines() if line.strip()]
                )
                with ingestion.lock:
                    ingestion.paths.append(self.path)
                    ingestion.envelopes.extend(items)
                answer = json.dumps(
                    {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.envelopes if e.get("data", {}).get("baseType") == base_type]


@pytest.fixture
def ingestion() -> Iterator[Ingestion]:
    fake = Ingestion()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_request_mongodb_dependency_logs_and_metrics_arrive(
    ingestion: Ingestion, mongo_uri: str, tmp_path: Path
) -> None:
    env = dict(
        os.environ,
        PROBE_MONGO_URI=mongo_uri,
        PROBE_CONNECTION_STRING=(
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint=http://127.0.0.1:{ingestion.port}/"
        ),
        OTEL_TRACES_SAMPLER="always_on",
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        TMPDIR=str(tmp_path),  # the exporter's offline retry files
    )
    for name in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "OTEL_SERVICE_NAME"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.core.test_telemetry"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(path.endswith("/v2.1/track") for path in ingestion.paths), ingestion.paths

    requests = [
        r
        for r in ingestion.of_type("RequestData")
        if r["data"]["baseData"]["name"] == "GET /health"
    ]
    # Once, although both the distro's FastAPI patch and instrument_app() could have added it.
    assert len(requests) == 1, ingestion.envelopes
    request = requests[0]
    assert request["data"]["baseData"]["responseCode"] == "200"
    assert request["tags"]["ai.cloud.role"] == ROLE
    operation = request["tags"]["ai.operation.id"]

    mongo = [
        d
        for d in ingestion.of_type("RemoteDependencyData")
        if d["data"]["baseData"].get("type") == "mongodb"
    ]
    assert [d["data"]["baseData"]["name"] for d in mongo] == ["mongodb.ping"]
    dependency = mongo[0]
    assert dependency["tags"]["ai.operation.id"] == operation
    assert dependency["tags"]["ai.operation.parentId"] == request["data"]["baseData"]["id"]
    assert dependency["data"]["baseData"]["success"] is True
    assert dependency["data"]["baseData"]["target"].endswith("|admin")

    messages = [
        m for m in ingestion.of_type("MessageData") if m["data"]["baseData"]["message"] == "checked"
    ]
    assert messages
    assert messages[0]["tags"]["ai.operation.id"] == operation

    metrics: dict[str, list[dict[str, Any]]] = {}
    for envelope in ingestion.of_type("MetricData"):
        for point in envelope["data"]["baseData"]["metrics"]:
            entry = dict(point, properties=envelope["data"]["baseData"].get("properties", {}))
            metrics.setdefault(point["name"], []).append(entry)
    assert {
        "paletai.games.generated",
        "paletai.generation.seconds",
        "paletai.generation.failures",
        "paletai.queue.depth",
    } <= set(metrics)
    assert metrics["paletai.queue.depth"][-1]["value"] == 7
    assert sum(p["value"] for p in metrics["paletai.games.generated"]) == 2
    [failure] = metrics["paletai.generation.failures"]
    assert failure["properties"] == {"provider": "offline", "reason": "timeout"}


def test_everything_is_a_no_op_without_a_connection_string() -> None:
    settings = Settings(_env_file=None, APPLICATIONINSIGHTS_CONNECTION_STRING=None)  # type: ignore[call-arg]
    assert telemetry.configure(settings) is False
    assert telemetry.mongo_event_listeners() == []
    telemetry.record_generation("offline", 1.0, True)
    telemetry.set_queue_depth_source(lambda: 1)

    class App:
        pass

    app = App()
    telemetry.instrument_app(app)
    assert not vars(app)
    assert telemetry.is_enabled() is False


# --- the probe (runs in the subprocess) ----------------------------------------------------


async def probe() -> None:
    import logging

    import httpx
    from fastapi import FastAPI
    from opentelemetry import metrics, trace
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from paletai.db.client import make_client

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        APPLICATIONINSIGHTS_CONNECTION_STRING=os.environ["PROBE_CONNECTION_STRING"],
        OTEL_SERVICE_NAME=ROLE,
    )
    assert telemetry.configure(settings) is True
    assert telemetry.configure(settings) is True  # once per process
    listeners = telemetry.mongo_event_listeners()
    assert len(listeners) == 1
    client = make_client(os.environ["PROBE_MONGO_URI"], event_listeners=listeners)

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        await client.admin.command("ping")
        logging.getLogger("paletai.probe").warning("checked")
        return {"status": "healthy"}

    telemetry.instrument_app(app)
    telemetry.set_queue_depth_source(lambda: 7)
    telemetry.record_generation("offline", 1.5, True)
    telemetry.record_generation("openai", 12.0, True)
    telemetry.record_generation("offline", 0.5, False, "timeout")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as http:
        response = await http.get("/health")
        assert response.status_code == 200, response.text
    await client.close()

    from opentelemetry._logs import get_logger_provider

    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    logger_provider = get_logger_provider()
    assert isinstance(tracer_provider, TracerProvider)
    assert isinstance(meter_provider, MeterProvider)
    assert isinstance(logger_provider, LoggerProvider)
    assert tracer_provider.force_flush()
    assert logger_provider.force_flush()
    assert meter_provider.force_flush()


if __name__ == "__main__":
    import asyncio

    asyncio.run(probe())


def test_the_served_app_reports_its_requests_and_mongodb_calls(
    ingestion: Ingestion, mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """`paletai serve` itself, configured by the legacy setting, as App Service runs it."""
    from tests.process_helpers import ServerProcess, clean_env

    env = clean_env(
        DB_PATH=mongo_uri,
        DB_NAME=db_name,
        PALETAI_DATA_DIR=str(tmp_path / "data"),
        APPLICATIONINSIGHTS_CONNECTION_STRING=(
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint=http://127.0.0.1:{ingestion.port}/"
        ),
        OTEL_SERVICE_NAME="paletai-e2e",
        OTEL_TRACES_SAMPLER="always_on",
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true",
        TMPDIR=str(tmp_path),
    )
    server = ServerProcess(tmp_path, env)
    try:
        server.wait_ready()
        import httpx

        assert httpx.get(f"{server.base_url}/health").status_code == 200
    finally:
        # Shutting down flushes the exporters.
        assert server.terminate() == 0
    requests = [
        r
        for r in ingestion.of_type("RequestData")
        if r["data"]["baseData"]["name"] == "GET /health"
    ]
    assert requests, [e.get("data", {}).get("baseType") for e in ingestion.envelopes]
    operation = requests[-1]["tags"]["ai.operation.id"]
    assert requests[-1]["tags"]["ai.cloud.role"] == "paletai-e2e"
    pings = [
        d
        for d in ingestion.of_type("RemoteDependencyData")
        if d["data"]["baseData"].get("type") == "mongodb"
        and d["tags"]["ai.operation.id"] == operation
    ]
    assert [d["data"]["baseData"]["name"] for d in pings] == ["mongodb.ping"]
