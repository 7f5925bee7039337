"""The embedded MongoDB stand-in: nx-27017 (MongoDB wire protocol on SQLite) as a subprocess.

Used when DB_PATH is unset (development, tests, the local migration rehearsal). The app talks to it
with the same PyMongo driver as to a real MongoDB. See docs/embedded-mongodb.md for its limits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from paletai.core.processes import stop_process_group


class EmbeddedMongoError(RuntimeError):
    """The embedded server could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server binds: a port whose last server just stopped (TIME_WAIT) is free, while
        # one with a live listener is not (Linux refuses that bind even with SO_REUSEADDR).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """Linux: SIGTERM the server when the process that started it dies, even by kill -9, so a
    crashed `paletai serve` leaves no database process behind (it flushes on SIGTERM)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _server_command() -> list[str]:
    # Run the server module with this interpreter, so no PATH lookup can pick another install.
    return [sys.executable, "-c", "from nx_27017.nx_27017 import main; main()"]


class EmbeddedMongo:
    """One nx-27017 process with its data in `data_dir` (one SQLite file per database).

    Use as a context manager, or call start()/stop(). `uri` is ready once start() returns.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.host = host
        self.port = port
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedMongoError("the embedded server is not started")
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> str:
        if self.process is not None:
            return self.uri
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        elif not _port_is_free(self.host, self.port):
            # Otherwise the readiness ping would reach whatever already listens there.
            raise EmbeddedMongoError(f"port {self.port} on {self.host} is already in use")
        run_dir = self.data_dir / "run"
        run_dir.mkdir(exist_ok=True)
        log_path = run_dir / f"nx-27017-{self.port}.log"
        cmd = [
            *_server_command(),
            "--data-dir",
            str(self.data_dir),
            "--host",
            self.host,
            "-p",
            str(self.port),
            "--log-file",
            str(log_path),
            "--pid-file",
            str(run_dir / f"nx-27017-{self.port}.pid"),
        ]
        log = log_path.open("ab")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C in the terminal reaches us, and we stop it.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self._wait_ready(log_path)
        return self.uri

    def _wait_ready(self, log_path: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                tail = log_path.read_text(errors="replace")[-800:] if log_path.exists() else ""
                self.process = None
                raise EmbeddedMongoError(
                    f"the embedded MongoDB (nx-27017) exited with code {code} at start-up; "
                    f"log {log_path}:\n{tail}"
                )
            try:
                with MongoClient[dict[str, object]](
                    self.uri, serverSelectionTimeoutMS=300, connectTimeoutMS=300
                ) as client:
                    client.admin.command("ping")
                return
            except PyMongoError as exc:
                last_error = str(exc)
                time.sleep(0.05)
        self.stop()
        raise EmbeddedMongoError(
            f"the embedded MongoDB did not answer on {self.host}:{self.port} within "
            f"{self.startup_timeout:.0f} s ({last_error})"
        )

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            stop_process_group(proc, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
