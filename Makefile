# make train — set up and run the default training; make test — set up and run every test CI runs.
PYTHON ?= python3
# CPU wheel by default; e.g. `make train TORCH=torch==2.11.0` on a GPU machine.
TORCH ?= torch==2.13.0

.PHONY: setup setup-dev system-deps train test test-fast bench-export

setup:
	$(PYTHON) -m pip install -q --disable-pip-version-check "$(TORCH)" -e .

setup-dev: node_modules/onnxruntime-web/package.json
	$(PYTHON) -m pip install -q --disable-pip-version-check "$(TORCH)" -e ".[dev,web]"
	./scripts/install_system_deps.sh

# onnxruntime-web for the export's web page (pinned in package.json / package-lock.json; copied into each export)
node_modules/onnxruntime-web/package.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: exports get no web page (web.enabled=false) and the browser tests skip"; fi

train: setup
	$(PYTHON) train.py

# fast, slow (end-to-end training, DDP) and browser tests; GPU tests skip without a GPU, saying so
test: setup-dev
	$(PYTHON) -m pytest -m "slow or browser or not slow"

test-fast:
	$(PYTHON) -m pytest

# export benchmark: file sizes, and step latency in Chromium (onnxruntime-web, wasm, 1 thread), onnxruntime and PyTorch
bench-export: setup-dev
	$(PYTHON) benchmarks/bench_export.py
