"""How the HTTP server runs the app, the same under `paletai serve` and gunicorn: h11 with a cap
on the request head's size, a deadline for sending it and a keep-alive idle timeout.

uvicorn's default parser (httptools) has no header size limit and uvicorn has no header timeout,
so both come from here, in `GuardedH11Protocol`: a head over `MAX_HEADER_BYTES` is answered 431
and closed (h11's `max_incomplete_event_size` is set too), and a connection that has not sent a
whole head within `HTTP_HEADER_TIMEOUT_SECONDS` is closed.
Production (deploy/startup.sh):
`gunicorn paletai.main:app -k paletai.core.server.GuardedUvicornWorker`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn_worker import UvicornWorker

from paletai.config import Settings, SettingsError, get_settings
from paletai.core.errors import error_body


class GuardedH11Protocol(H11Protocol):
    """Refuses a request head over `max_head_bytes` (431) and closes a connection that does not
    send a complete head in `head_timeout` s (a slow client would otherwise hold it for ever)."""

    head_timeout: ClassVar[float] = 10.0
    max_head_bytes: ClassVar[int] = 16 * 1024
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_too_large(data):
            body = json.dumps(
                error_body(
                    "headers_too_large",
                    f"request line and headers exceed {self.max_head_bytes} bytes: send fewer "
                    "or smaller headers",
                )
            ).encode()
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\nconnection: close\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            self.transport.close()
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # a head has begun (or the connection waits for one)
        elif self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_too_large(self, data: bytes) -> bool:
        # h11 limits only a head still incomplete after a read; this also catches one that
        # arrives whole in a single read.
        pending = self.conn.trailing_data[0] + data
        end = pending.find(b"\r\n\r\n")
        return (len(pending) if end < 0 else end + 4) > self.max_head_bytes

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn Config keywords that bound request heads and idle connections."""
    protocol = type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "head_timeout": settings.HTTP_HEADER_TIMEOUT_SECONDS,
            "max_head_bytes": settings.MAX_HEADER_BYTES,
        },
    )
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": settings.MAX_HEADER_BYTES,
        "timeout_keep_alive": settings.HTTP_KEEP_ALIVE_SECONDS,
    }


def _settings_or_defaults() -> Settings:
    try:
        return get_settings()
    except SettingsError:
        # The app itself reports bad settings in one line when gunicorn loads it.
        return Settings.model_construct()


class GuardedUvicornWorker(UvicornWorker):  # type: ignore[misc]  # untyped base
    """gunicorn's uvicorn worker with the limits above."""

    @property  # type: ignore[override]
    def CONFIG_KWARGS(self) -> dict[str, Any]:  # noqa: N802 - the name UvicornWorker reads
        return {"loop": "auto", **uvicorn_options(_settings_or_defaults())}
