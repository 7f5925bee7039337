#!/usr/bin/env bash
# Builds the stock MongoDB Database Tools (mongodump, mongorestore, bsondump) from a mongo-tools
# source tree into tools/mongo-tools/bin, for the cross-check in tests/ops/db/test_stock_tools.py:
#
#   bash scripts/build-mongo-tools.sh ~/src/mongo-tools        # a checkout of tag 100.8.0
#   PALETAI_MONGO_TOOLS=tools/mongo-tools/bin .venv/bin/pytest tests/ops/db/test_stock_tools.py
#
# Not part of `make test`: the source comes from GitHub (github.com/mongodb/mongo-tools), which a
# fresh machine here may not reach, and no registry we use ships the tools. Tag 100.8.0 is the
# newest whose go.mod asks for Go 1.19 (Debian 12's golang-1.19-go, installed here as root) and it
# vendors its dependencies, so the build needs no network. Newer tags need a newer Go.
set -euo pipefail
cd "$(dirname "$0")/.."

src="${1:-}"
if [ -z "$src" ] || [ ! -f "$src/go.mod" ] || [ ! -d "$src/mongodump" ]; then
  echo "build-mongo-tools: give a mongo-tools source tree (git clone -b 100.8.0 https://github.com/mongodb/mongo-tools)" >&2
  exit 2
fi

go=""
for candidate in go /usr/lib/go-1.19/bin/go; do
  if command -v "$candidate" >/dev/null 2>&1; then go="$(command -v "$candidate")"; break; fi
done
if [ -z "$go" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19-go >/dev/null
    go=/usr/lib/go-1.19/bin/go
  else
    echo "build-mongo-tools: Go is needed: sudo apt-get install golang-1.19-go" >&2
    exit 1
  fi
fi

out="$PWD/tools/mongo-tools/bin"
mkdir -p "$out"
version="${MONGO_TOOLS_VERSION:-$(git -C "$src" describe --tags 2>/dev/null || echo unknown)}"
for tool in mongodump mongorestore bsondump; do
  echo "build-mongo-tools: $tool ($version, $("$go" version | cut -d' ' -f3))"
  (cd "$src" && CGO_ENABLED=0 "$go" build -mod=vendor \
    -ldflags "-X main.VersionStr=$version" -o "$out/$tool" "./$tool/main")
done
echo "build-mongo-tools: built into $out"
