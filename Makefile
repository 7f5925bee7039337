# The two commands a newcomer runs:  `make run`  and  `make test`.
# Everything the project needs is installed from here: Python packages into .venv, Azurite (npm)
# into tools/, Chromium (Debian) for the browser play-tests.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-fast shell setup tools lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

tools: $(STAMP)
	bash scripts/install-tools.sh

## Set up and start the product on its embedded default (MongoDB stand-in, offline AI, local images).
run: $(STAMP)
	$(BIN)/paletai serve --host $(HOST) --port $(PORT)

## Set up and run the whole test suite (lint, types, tests).
test: $(STAMP) tools
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

## Lint, types and every test not marked slow (the process-crash and sync-under-load tests).
test-fast: $(STAMP) tools
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -m "not slow"

## A shell with the project's tools (`paletai`, `pytest`, ...) on PATH; `exit` leaves it.
shell: $(STAMP)
	@echo "paletai is on PATH in this shell (try: paletai --help); exit to leave"
	@PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)" $${SHELL:-/bin/bash}

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/bench_api.py

clean:
	rm -rf $(VENV) tools/node_modules .pytest_cache .mypy_cache .ruff_cache
