"""The embedded MongoDB stand-in: nx-27017 (MongoDB wire protocol on SQLite) as a subprocess.

Used when DB_PATH is unset (development, tests, the local migration rehearsal). The app talks to it
with the same PyMongo driver as to a real MongoDB. See docs/embedded-mongodb.md for its limits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from paletai.core.processes import start_process, stop_process_group

log = logging.getLogger(__name__)


class EmbeddedMongoError(RuntimeError):
    """The embedded server could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server binds: a port whose last server just stopped (TIME_WAIT) is free, while
        # one with a live listener is not (Linux refuses that bind even with SO_REUSEADDR).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _owner_only(directory: Path) -> None:
    """chmod 0700 the directory and its subdirectories, 0600 its files: the database's data is
    for this user only (nx-27017 creates its files 0644; files made before this fix too)."""
    directory.chmod(0o700)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            (Path(root) / name).chmod(0o700)
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                (Path(root) / name).chmod(0o600)


def _server_command() -> list[str]:
    # Run the server module with this interpreter, so no PATH lookup can pick another install.
    return [sys.executable, "-c", "from nx_27017.nx_27017 import main; main()"]


class EmbeddedMongo:
    """One nx-27017 process with its data in `data_dir` (one SQLite file per database).

    Use as a context manager, or call start()/stop(). `uri` is ready once start() returns.
    Its files are readable by the owner only (directories 0700, files 0600).
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
        self.restarts = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def uri(self) -> str:
        if self.port is None:
            raise EmbeddedMongoError("the embedded server is not started")
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def database_uri(self, name: str) -> str:
        """The URI with a database name, so that tools (mongosh) land in the app's database."""
        if self.port is None:
            raise EmbeddedMongoError("the embedded server is not started")
        return f"mongodb://{self.host}:{self.port}/{quote(name, safe='')}?directConnection=true"

    def start(self) -> str:
        if self.process is not None:
            return self.uri
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _owner_only(self.data_dir)
        if self.port is None:
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            # Otherwise the readiness ping would reach whatever already listens there.
            raise EmbeddedMongoError(f"port {self.port} on {self.host} is already in use")
        run_dir = self.data_dir / "run"
        run_dir.mkdir(exist_ok=True, mode=0o700)
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
        # umask 077: the SQLite files, journals and pid file it creates are the owner's only.
        self.process = start_process(cmd, log_path=log_path, umask=0o077)
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
        self._stop_process()
        raise EmbeddedMongoError(
            f"the embedded MongoDB did not answer on {self.host}:{self.port} within "
            f"{self.startup_timeout:.0f} s ({last_error})"
        )

    def watch(
        self,
        *,
        max_restarts: int = 5,
        window_seconds: float = 600.0,
        restart_delay: float = 1.0,
        check_every: float = 0.5,
    ) -> None:
        """Restart the server (same port, same data) whenever it dies, at most `max_restarts`
        times in `window_seconds`, logging one line each time; then give up with one line.

        Runs in a thread that lives until stop(): the restarted server's die-with-parent signal
        follows the thread that started it.
        """
        if self._watchdog is not None:
            return
        self._stopping.clear()
        self._watchdog = threading.Thread(
            target=self._watch,
            args=(max_restarts, window_seconds, restart_delay, check_every),
            name="paletai-db-watchdog",
            daemon=True,
        )
        self._watchdog.start()

    def _watch(
        self, max_restarts: int, window_seconds: float, restart_delay: float, check_every: float
    ) -> None:
        recent: deque[float] = deque()
        while not self._stopping.wait(check_every):
            proc = self.process
            if proc is None or proc.poll() is None:
                continue
            now = time.monotonic()
            while recent and now - recent[0] > window_seconds:
                recent.popleft()
            if len(recent) >= max_restarts:
                log.error(
                    "the embedded database died (exit code %s) after %d restarts in %.0f min: "
                    "giving up; see %s/run and restart `paletai serve`",
                    proc.returncode,
                    len(recent),
                    window_seconds / 60,
                    self.data_dir,
                )
                return
            # A pause between restarts: a server that dies at once does not spin the machine.
            if self._stopping.wait(restart_delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = None
                try:
                    self.start()
                except EmbeddedMongoError as exc:
                    log.error(
                        "the embedded database died (exit code %s) and could not be restarted: "
                        "%s; giving up",
                        proc.returncode,
                        str(exc).splitlines()[0],
                    )
                    return
            recent.append(now)
            self.restarts += 1
            log.warning(
                "the embedded database died (exit code %s); restarted it on %s:%s "
                "(%d of at most %d restarts in %.0f min)",
                proc.returncode,
                self.host,
                self.port,
                len(recent),
                max_restarts,
                window_seconds / 60,
            )

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.join(self.startup_timeout + timeout)
        with self._lock:
            self._stop_process(timeout)

    def _stop_process(self, timeout: float = 10.0) -> None:
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
