# The two commands a newcomer needs: `make demo` and `make test`. Both set up what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
NODE_TOOLS := tests/node

.PHONY: help setup demo test lint typecheck unit clean

help:
	@echo "make demo   set up, then run the remediator against the embedded localarm"
	@echo "make test   set up, then run ruff, mypy and the whole test suite"

$(BIN)/.setup-done: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_TOOLS)/node_modules/.setup-done: $(NODE_TOOLS)/package.json $(NODE_TOOLS)/package-lock.json
	npm ci --prefix $(NODE_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.setup-done $(NODE_TOOLS)/node_modules/.setup-done

lint: $(BIN)/.setup-done
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.setup-done
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m demo

clean:
	rm -rf $(VENV) $(NODE_TOOLS)/node_modules build .pytest_cache .mypy_cache .ruff_cache .hypothesis
