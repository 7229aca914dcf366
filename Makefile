# make train — set up and run the default training; make test — set up and run every test CI runs.
# Installs into the active virtualenv (or conda env); without one, into ./.venv, made on first use.
ifneq ($(VIRTUAL_ENV)$(CONDA_PREFIX),)
PYTHON ?= python
else
PYTHON ?= .venv/bin/python
endif
# CPU wheel by default; e.g. `make train TORCH=torch==2.11.0` on a GPU machine.
TORCH ?= torch==2.13.0
PIP = $(PYTHON) -m pip install -q --disable-pip-version-check

.PHONY: setup setup-dev train test test-fast lint-imports bench-export

.venv/bin/python:
	python3 -m venv .venv

# the base install: train, sweep (grid and Optuna), export with parity and the web page
setup: $(if $(filter .venv/bin/python,$(PYTHON)),.venv/bin/python) node_modules/onnxruntime-web/package.json
	$(PIP) "$(TORCH)" -e .

# + LFM2 (transformers), MiniWoB++/Playwright, test tools; Debian's Chromium for the browser tests
setup-dev: setup
	$(PIP) "$(TORCH)" -e ".[dev]"
	./scripts/install_system_deps.sh

# onnxruntime-web for the export's web page (pinned in package.json / package-lock.json; copied into each export)
node_modules/onnxruntime-web/package.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: exports get no web page (web.enabled=false) and the browser tests skip"; fi

train: setup
	$(PYTHON) train.py

# the layering (pyproject.toml [tool.importlinter]), then fast, slow (end-to-end training, DDP) and browser
# tests; GPU tests skip without a GPU, saying so (with CI=true every other skip fails)
test: setup-dev
	$(MAKE) lint-imports
	$(PYTHON) -m pytest -m "slow or browser or not slow"

lint-imports:
	$(PYTHON) -c "from importlinter.cli import lint_imports_command; lint_imports_command()" --no-cache

test-fast:
	$(PYTHON) -m pytest

# export benchmark: file sizes, and step latency in Chromium (onnxruntime-web, wasm, 1 thread), onnxruntime and PyTorch
bench-export: setup-dev
	$(PYTHON) benchmarks/bench_export.py
