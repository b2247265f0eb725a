# Two commands on a fresh clone: `make demo` and `make test`.
# Each creates .venv, installs the pinned dependencies (building llama-cpp-python once;
# pip's wheel cache makes later installs fast) and runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean bench bench-quick bench-peers

demo: $(STAMP)
	$(BIN)/dialogue demo

test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) bench-quick

# Benchmarks (benchmarks/): every figure a ratio against a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --readme

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

PEERS := benchmarks/.venv-peers
bench-peers: $(STAMP)
	test -x $(PEERS)/bin/python || $(PYTHON) -m venv $(PEERS)
	test -f $(PEERS)/.installed || { $(PEERS)/bin/python -m pip install --quiet \
		'nemoguardrails==0.24.1' 'openai==3.54.0' && touch $(PEERS)/.installed; }
	$(BIN)/python benchmarks/peers.py

lint: $(STAMP)
	$(BIN)/dialogue lint policies/*.py catalogs/*.toml

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "dialogue needs Python 3.11 or newer ($(PYTHON) is older); run: make PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing dependencies (the first run builds llama-cpp-python: about 10 minutes on 2 cores)..."
	$(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
