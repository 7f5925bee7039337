#!/usr/bin/env bash
# Installs the non-Python tools the tests use: Azurite (pinned, npm, into tools/) and Chromium
# (Debian) for the browser play-tests. Idempotent: does nothing when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x tools/node_modules/.bin/azurite ]; then
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
