# Every target that needs Python creates .venv itself: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# import-linter has a venv of its own: it brings rich, which structlog imports whenever it is
# installed (~0.1 s more at every start of the exporter), and the exporter's own venv is the
# one the tests and `make bench` run, which should be what a deployment runs.
TOOLS  := .venv-tools
TOOLSTAMP := $(TOOLS)/.installed
IMPORT_LINTER := import-linter>=2.16
CONFIG ?= config.yaml

.PHONY: demo run test lint typecheck imports unit bench screenshot clean

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

typecheck: $(DEVSTAMP)   ## mypy --strict on the package, its tests and the benchmarks
	$(BIN)/mypy --strict exporter tests $(wildcard bench)

$(TOOLSTAMP): Makefile
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip '$(IMPORT_LINTER)'
	touch $@

imports: $(TOOLSTAMP)    ## the import contracts of pyproject.toml (docs/architecture.md's floors)
	PYTHONPATH=$(CURDIR) $(TOOLS)/bin/lint-imports

test: lint typecheck imports   ## every test: lint, types, import contracts, unit, integration
	$(BIN)/pytest -q -rs $(PYTEST_ARGS)

unit: $(DEVSTAMP)
	$(BIN)/pytest -q tests/unit

bench: $(DEVSTAMP)    ## benchmarks; figures go to bench/RESULTS.md
	$(BIN)/python -m bench.run

screenshot: $(DEVSTAMP)   ## docs/img/status-page.png: the demo's data in headless Chromium
	REQUIRE_INTEGRATION=1 UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/browser/test_demo_screenshot.py

clean:
	rm -rf $(VENV) $(TOOLS) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
