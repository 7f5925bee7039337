#!/usr/bin/env bash
# The App Service startup command (appCommandLine = "bash deploy/startup.sh"): gunicorn with
# uvicorn workers, run from the root of the ZIP package that `paletai deploy package` builds.
# GuardedUvicornWorker bounds request heads (MAX_HEADER_BYTES, HTTP_HEADER_TIMEOUT_SECONDS) and idle
# keep-alive connections (HTTP_KEEP_ALIVE_SECONDS); see src/paletai/core/server.py.
# Oryx has installed requirements.txt into the app's virtualenv; the code itself is under src/.
set -euo pipefail
APP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$APP_ROOT"
export PYTHONPATH="$APP_ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
exec gunicorn paletai.main:app -k paletai.core.server.GuardedUvicornWorker --workers ${WEB_CONCURRENCY:-2} --bind 0.0.0.0:${PORT:-8000} --timeout 600 --access-logfile -
