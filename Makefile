# Stock Tracker — the commands a newcomer runs: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
LOCK := requirements.lock

.PHONY: install run test lint format bench lock uv clean

uv:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --quiet uv

$(VENV)/.installed: $(LOCK) pyproject.toml | uv
	@UV=$$(command -v uv || echo "$(UV)"); \
	test -x $(PY) || $$UV venv --python python3 $(VENV); \
	VIRTUAL_ENV=$(VENV) $$UV pip sync --python $(PY) $(LOCK) && \
	VIRTUAL_ENV=$(VENV) $$UV pip install --python $(PY) --no-deps -e . && \
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/stock-tracker dev

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/run_all.py

lock: uv
	@UV=$$(command -v uv || echo "$(UV)"); \
	$$UV pip compile pyproject.toml --group dev --generate-hashes --universal --python-version 3.11 -o $(LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
