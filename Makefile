# The two commands of the README: `make demo` (the main job) and `make test` (the suite).
# Each sets up its own virtual environment in .venv on first use, and again when
# pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: demo test lint bench clean

demo: $(READY)
	$(BIN)/lean-async demo

test: $(READY)
	$(BIN)/python -m pytest

lint: $(READY)
	$(BIN)/ruff check lean_async tests benchmarks
	$(BIN)/ruff format --check lean_async tests benchmarks
	$(BIN)/mypy lean_async

bench: $(READY)
	$(BIN)/python -m benchmarks --save

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cli,speed,mcp,test,lint,bench]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
