# The two commands a newcomer needs: `make demo` and `make test`. Both set up what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
NODE_TOOLS := tests/node
# checkov (Bicep static analysis) is big and pins its own dependencies: it gets a venv of its own.
INFRA_VENV := .venv-infra
# Debian's Chromium renders the Teams cards in the tests (tests/render); CI runs as root on Debian.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help setup demo test lint typecheck package bench soak clean

help:
	@echo "make demo   set up, then run the remediator against the embedded localarm"
	@echo "make test   set up, then run ruff, mypy and the whole test suite"
	@echo "make package  build the deployable Functions package (build/package.zip)"
	@echo "make bench  print the benchmarks: planning, event to write, the sweep, cold start (several minutes)"
	@echo "make soak   thousands of ARM events with random faults while people write (about 10 minutes)"

$(BIN)/.setup-done: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_TOOLS)/node_modules/.setup-done: $(NODE_TOOLS)/package.json $(NODE_TOOLS)/package-lock.json
	npm ci --prefix $(NODE_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

$(INFRA_VENV)/bin/.setup-done: requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y --no-install-recommends chromium fonts-dejavu-core

setup: $(BIN)/.setup-done $(NODE_TOOLS)/node_modules/.setup-done $(INFRA_VENV)/bin/.setup-done $(CHROMIUM)

lint: $(BIN)/.setup-done
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.setup-done
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m demo

bench: $(BIN)/.setup-done
	$(BIN)/python -m benchmarks.planning
	$(BIN)/python -m benchmarks.events
	$(BIN)/python -m benchmarks.sweep
	$(BIN)/python -m benchmarks.cold_start

soak: $(BIN)/.setup-done
	$(BIN)/python -m benchmarks.soak

package: $(BIN)/.setup-done
	$(BIN)/python -m tools.package --with-dependencies --zip

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(NODE_TOOLS)/node_modules build .pytest_cache .mypy_cache .ruff_cache .hypothesis
