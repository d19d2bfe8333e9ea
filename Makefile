# Stock Tracker — the commands a newcomer runs: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
# Two locks, one resolution: requirements.lock (everything a developer and CI install: the app, the
# embedded servers of `make run`, the dev tools) and requirements-runtime.lock (only what the container
# image runs), compiled under the first as constraints so that every shared pin is the same version.
LOCK := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock
# uv and the build backend for the image's builder stage.
BUILD_LOCK := deploy/image/build-requirements.lock
LOCK_FLAGS := --generate-hashes --universal --python-version 3.11

.PHONY: install run test lint lint-deploy audit sbom format bench lock uv clean

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

lint: install lint-deploy
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/deptry .

# What cannot run on this machine (no container engine) is still checked here: the workflows (actionlint),
# the Containerfile (hadolint), the Prometheus rules (promtool when present, else a parser-based check).
lint-deploy: install
	$(VENV)/bin/hadolint Containerfile
	$(PY) scripts/check_deploy.py

# A vulnerability audit of both locks (PyPI's advisory data) and bandit over the application code.
audit: install
	$(VENV)/bin/pip-audit --strict --disable-pip --no-deps --progress-spinner off -r $(RUNTIME_LOCK)
	$(VENV)/bin/pip-audit --strict --disable-pip --no-deps --progress-spinner off -r $(LOCK)
	$(VENV)/bin/bandit -q -c pyproject.toml -r app

# CycloneDX SBOM of the Python packages the image installs (CI also makes one of the whole image).
sbom: install
	@mkdir -p build
	$(VENV)/bin/cyclonedx-py requirements --pyproject pyproject.toml --output-reproducible \
		--of JSON -o build/sbom-python.cdx.json $(RUNTIME_LOCK)
	@echo "wrote build/sbom-python.cdx.json"

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) bench/run_all.py

lock: uv
	@UV=$$(command -v uv || echo "$(UV)"); \
	$$UV pip compile pyproject.toml --extra embedded --group dev $(LOCK_FLAGS) -o $(LOCK) && \
	$$UV pip compile pyproject.toml $(LOCK_FLAGS) -c $(LOCK) -o $(RUNTIME_LOCK) && \
	$$UV pip compile deploy/image/build-requirements.in $(LOCK_FLAGS) -o $(BUILD_LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
