"""Running PaletAI as real processes in tests (serve, worker), the way operators run it."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx

from paletai.core.processes import start_process
from paletai.db.embedded import free_port


def clean_env(**overrides: str) -> dict[str, str]:
    """The parent's environment minus any PaletAI/provider settings, plus these."""
    prefixes = ("DB_", "OPENAI_", "AZURE_", "ANTHROPIC_", "ONESIGNAL_", "APPLICATIONINSIGHTS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({"AI_PROVIDER": "offline", "LOG_LEVEL": "WARNING", "ENVIRONMENT": "test"})
    env.update({"COVER_MODE": "card", "PLAYABILITY_CHECK": "off", "COVER_PROCESSES": "0"})
    env.update(overrides)
    return env


def paletai_db_child() -> tuple[list[str], dict[str, str]]:
    """The command line and environment of `paletai db ...` as its own process, importing the
    code under test (this interpreter, this import path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return [sys.executable, "-m", "paletai", "db"], env


class ServerProcess:
    """`paletai serve` in a subprocess, on a free port."""

    def __init__(self, cwd: Path, env: dict[str, str], log_name: str = "serve.log") -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / log_name
        self.proc = start_process(
            [sys.executable, "-m", "paletai", "serve", "--port", str(self.port)],
            log_path=self.log_path,
            env=env,
            cwd=cwd,
        )

    def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, within: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(within)
