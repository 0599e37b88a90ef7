# Two commands on a fresh clone: `make run` and `make test`. Both are idempotent:
# the venv and the installs are redone only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.stamp-run
STAMP_TEST := $(VENV)/.stamp-test

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(STAMP_RUN)

run: $(STAMP_RUN)
	$(BIN)/eqx simulate --tournament --episodes 10000

test: $(STAMP_TEST)
	$(BIN)/ruff check eqx_jax baselines scripts tests
	$(BIN)/python -m pytest -n 2 tests

bench: $(STAMP_RUN)
	$(BIN)/eqx bench env

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
