"""The ZIP package runs: unpacked, `bash deploy/startup.sh` (the web app's startup command)
starts gunicorn with uvicorn workers on $PORT, serving the code from the package's src/."""

from __future__ import annotations

import os
import sys
import time
import uuid
import zipfile
from pathlib import Path

import httpx

from paletai.core.processes import start_process, stop_process_group
from paletai.db.embedded import free_port
from paletai.ops.azure import deploy as ops
from tests.process_helpers import clean_env

REPO = Path(__file__).resolve().parents[2]
MARKER = "served-from-the-package"


def test_startup_script_serves_the_packaged_app(tmp_path: Path, mongo_uri: str) -> None:
    package = ops.build_package(REPO, tmp_path / "deploy.zip").path
    site = tmp_path / "wwwroot"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(site)
    # Mark the unpacked copy, to tell it apart from the installed paletai: its app has a title
    # of its own (main.py builds `app` lazily through `create_app`).
    with (site / "src/paletai/main.py").open("a") as fh:
        fh.write(
            "\n_create_app = create_app\n"
            "def create_app(*args, **kwargs):\n"
            "    application = _create_app(*args, **kwargs)\n"
            f"    application.title = {MARKER!r}\n"
            "    return application\n"
        )

    port = free_port()
    env = clean_env(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        DB_PATH=mongo_uri,
        DB_NAME=f"t_{uuid.uuid4().hex[:12]}",
        ENVIRONMENT="production",
        JWT_SECRET_KEY="startup-test-" + "s" * 40,
        PALETAI_DATA_DIR=str(tmp_path / "data"),
        PORT=str(port),
        WEB_CONCURRENCY="1",
    )
    log_path = tmp_path / "startup.log"
    proc = start_process(["bash", ops.STARTUP_SCRIPT], log_path=log_path, env=env, cwd=site)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        health: httpx.Response | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        log_text = log_path.read_text(errors="replace")[-3000:]
        assert health is not None, f"startup.sh never answered:\n{log_text}"
        assert health.status_code == 200, log_text
        assert health.json()["database"] == "healthy"
        assert httpx.get(f"{base}/openapi.json", timeout=5).json()["info"]["title"] == MARKER
        assert "Booting worker" in log_path.read_text(errors="replace")
        assert "uvicorn" in log_path.read_text(errors="replace").lower()
    finally:
        stop_process_group(proc, timeout=20)
