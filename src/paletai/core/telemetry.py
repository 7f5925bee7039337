"""Application Insights through OpenTelemetry (azure-monitor-opentelemetry).

Configured only when APPLICATIONINSIGHTS_CONNECTION_STRING is set; otherwise every function here
returns at once, so an unconfigured service pays nothing.

What is sent when it is on:
- requests: the FastAPI instrumentation (the distro patches FastAPI; `instrument_app` makes sure
  an app built before `configure` is covered too);
- dependencies: outgoing HTTP through httpx (OneSignal, the AI providers), Azure SDK calls (blob
  storage), and MongoDB commands through `mongo_event_listeners()` (the distro has no PyMongo
  instrumentation, and `opentelemetry-instrumentation-pymongo` registers a process-global
  listener; ours is passed to the client explicitly, which works the same for AsyncMongoClient);
- logs: the root logger's records, correlated with the request;
- metrics: paletai.games.generated, paletai.generation.seconds, paletai.generation.failures,
  paletai.queue.depth.

The cloud role name (the app's name on the Application Map) is OTEL_SERVICE_NAME, else APP_NAME.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from pymongo import monitoring

from paletai.config import Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_enabled = False
_queue_depth_source: Callable[[], int] | None = None
_instruments: dict[str, Any] = {}
_mongo_listener: MongoCommandTracer | None = None


def is_enabled() -> bool:
    return _enabled


def configure(settings: Settings) -> bool:
    """Set up exporters once per process. Returns whether telemetry is on."""
    global _enabled, _mongo_listener
    secret = settings.APPLICATIONINSIGHTS_CONNECTION_STRING
    if secret is None or not secret.get_secret_value().strip():
        return _enabled
    with _lock:
        if _enabled:
            return True
        connection_string = secret.get_secret_value().strip()
        role = settings.OTEL_SERVICE_NAME or settings.APP_NAME
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor
            from opentelemetry.sdk.resources import Resource

            configure_azure_monitor(
                connection_string=connection_string,
                resource=Resource.create({"service.name": role}),
                # Live Metrics only where the connection string names its endpoint (the portal's
                # do); elsewhere it would poll a public endpoint for nothing.
                enable_live_metrics="LiveEndpoint=" in connection_string,
            )
        except Exception as exc:  # noqa: BLE001 - telemetry must never stop the service
            # The message may quote the connection string: log only the type.
            log.warning("telemetry: Application Insights not configured (%s)", type(exc).__name__)
            return False
        _create_instruments()
        from opentelemetry import trace

        _mongo_listener = MongoCommandTracer(trace.get_tracer("paletai.mongodb"))
        _enabled = True
        log.info("telemetry: sending to Application Insights as %r", role)
        return True


def instrument_app(app: Any) -> None:
    """Attach request tracing to the FastAPI app (no-op when telemetry is off)."""
    if not _enabled or getattr(app, "_is_instrumented_by_opentelemetry", False):
        return
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:  # pragma: no cover - the distro depends on it
        log.warning("telemetry: opentelemetry-instrumentation-fastapi is missing; no requests")
        return
    FastAPIInstrumentor.instrument_app(app)


def record_generation(provider: str, seconds: float, ok: bool, reason: str | None = None) -> None:
    """Custom metrics: games generated, generation seconds, failures by reason."""
    if not _enabled:
        return
    outcome = "succeeded" if ok else "failed"
    _instruments["seconds"].record(seconds, {"provider": provider, "outcome": outcome})
    if ok:
        _instruments["generated"].add(1, {"provider": provider})
    else:
        _instruments["failures"].add(1, {"provider": provider, "reason": reason or "unknown"})


def set_queue_depth_source(source: Callable[[], int]) -> None:
    """Register a callable that returns the number of queued tasks (an observable gauge)."""
    global _queue_depth_source
    _queue_depth_source = source


def mongo_event_listeners() -> list[Any]:
    """PyMongo command listeners to pass as `event_listeners=` (empty when telemetry is off).

    Call after `configure()`: a client created before it gets no listener.
    """
    return [_mongo_listener] if _enabled and _mongo_listener is not None else []


def _create_instruments() -> None:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation

    meter = metrics.get_meter("paletai")

    def observe_queue(options: CallbackOptions) -> Iterable[Observation]:
        source = _queue_depth_source
        if source is None:
            return []
        try:
            return [Observation(int(source()))]
        except Exception:  # noqa: BLE001 - a failing gauge must not break the exporter
            return []

    _instruments["generated"] = meter.create_counter(
        "paletai.games.generated", unit="{game}", description="games generated and published"
    )
    _instruments["seconds"] = meter.create_histogram(
        "paletai.generation.seconds", unit="s", description="time to generate one game"
    )
    _instruments["failures"] = meter.create_counter(
        "paletai.generation.failures", unit="{task}", description="generations that failed"
    )
    _instruments["queue"] = meter.create_observable_gauge(
        "paletai.queue.depth",
        callbacks=[observe_queue],
        unit="{task}",
        description="tasks waiting for a worker",
    )


# Commands that are the driver's own housekeeping (or carry credentials): never traced.
_UNTRACED = frozenset(
    {
        "hello",
        "ismaster",
        "saslstart",
        "saslcontinue",
        "authenticate",
        "getnonce",
        "endsessions",
        "killcursors",
    }
)


class MongoCommandTracer(monitoring.CommandListener):
    """One CLIENT span per MongoDB command, named `mongodb.<command>`.

    PyMongo calls these hooks inline in the task that runs the command, so the span's parent is
    the current request's span. Only the command name and collection are recorded, never the
    command document (it may hold user data).
    """

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer
        self._spans: dict[tuple[Any, ...], Any] = {}

    @staticmethod
    def _key(event: Any) -> tuple[Any, ...]:
        return (event.connection_id, event.request_id, event.operation_id)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name.lower() in _UNTRACED:
            return
        try:
            from opentelemetry.trace import SpanKind

            attributes: dict[str, Any] = {
                "db.system": "mongodb",
                "db.system.name": "mongodb",
                "db.name": event.database_name,
                "db.namespace": event.database_name,
                "db.operation": name,
                "db.operation.name": name,
            }
            collection = event.command.get(name)
            if isinstance(collection, str):
                attributes["db.mongodb.collection"] = collection
                attributes["db.collection.name"] = collection
            host, port = event.connection_id[0], event.connection_id[1]
            if host:
                attributes["server.address"] = str(host)
            if port:
                attributes["server.port"] = int(port)
            span = self._tracer.start_span(
                f"mongodb.{name}", kind=SpanKind.CLIENT, attributes=attributes
            )
            self._spans[self._key(event)] = span
        except Exception:  # noqa: BLE001 - tracing must never break a query
            log.debug("telemetry: could not start a MongoDB span", exc_info=True)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        span = self._spans.pop(self._key(event), None)
        if span is not None:
            span.end()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        span = self._spans.pop(self._key(event), None)
        if span is None:
            return
        try:
            from opentelemetry.trace import Status, StatusCode

            code = event.failure.get("codeName") or event.failure.get("code") or "error"
            span.set_status(Status(StatusCode.ERROR, str(code)))
        finally:
            span.end()
