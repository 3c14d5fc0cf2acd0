# Every target that needs Python creates .venv itself: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
CONFIG ?= config.yaml

.PHONY: demo run test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEVSTAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

demo: $(STAMP)   ## simulated providers + exporter on http://localhost:9966
	$(BIN)/credits-exporter demo

run: $(STAMP)    ## run the exporter with $(CONFIG)
	$(BIN)/credits-exporter --config.file=$(CONFIG)

lint: $(DEVSTAMP)
	$(BIN)/ruff check exporter tests $(wildcard bench)
	$(BIN)/ruff format --check exporter tests $(wildcard bench)

typecheck: $(DEVSTAMP)
	$(BIN)/mypy --strict exporter

test: lint typecheck   ## every test: lint, types, unit, integration
	$(BIN)/pytest -q -rs $(PYTEST_ARGS)

unit: $(DEVSTAMP)
	$(BIN)/pytest -q tests/unit

bench: $(DEVSTAMP)    ## benchmarks; figures go to bench/RESULTS.md
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
