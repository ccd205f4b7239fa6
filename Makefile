# Two entry points: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench validate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	rm -f demo.db demo.db-wal demo.db-shm demo.db.key demo.db.key.pub demo.db.checkpoints
	$(BIN)/capa --db demo.db demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_readmodels.py
	$(BIN)/python scripts/bench_audit.py
	$(BIN)/python scripts/bench_dashboard.py
	$(BIN)/python scripts/bench_server.py

validate: setup
	$(BIN)/capa validate

clean:
	rm -rf $(VENV) demo.db* .pytest_cache
