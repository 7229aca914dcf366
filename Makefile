# make train — set up and run the default training; make test — set up and run every test CI runs.
PYTHON ?= python3
# CPU wheel by default; e.g. `make train TORCH=torch==2.11.0` on a GPU machine.
TORCH ?= torch==2.13.0

.PHONY: setup setup-dev system-deps train test test-fast

setup:
	$(PYTHON) -m pip install -q --disable-pip-version-check "$(TORCH)" -e .

setup-dev:
	$(PYTHON) -m pip install -q --disable-pip-version-check "$(TORCH)" -e ".[dev,web]"
	./scripts/install_system_deps.sh

train: setup
	$(PYTHON) train.py

# fast, slow (end-to-end training, DDP) and browser tests; GPU tests skip without a GPU, saying so
test: setup-dev
	$(PYTHON) -m pytest -m "slow or browser or not slow"

test-fast:
	$(PYTHON) -m pytest
