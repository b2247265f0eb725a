# Two commands on a fresh clone: `make demo` and `make test`.
# Each creates .venv, installs dialogue with every extra and the dev tools at the exact
# versions of constraints.txt (building llama-cpp-python once; the wheel is cached) and runs.

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
	$(BIN)/dialogue lint dialogue/examples

install: $(STAMP)

# llama.cpp is built for a portable x86-64 level (AVX2, FMA, F16C), not for the build machine:
# a native build on some virtual CPUs that report AVX-512/AMX crashes in its first forward
# pass. The wheel is kept under the flags it was built with, so later installs reuse it.
LLAMA_VERSION := 0.3.36
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_FLAVOUR := x86-64-avx2
else
LLAMA_CMAKE :=
LLAMA_FLAVOUR := $(shell uname -m)-native
endif
WHEELS ?= $(HOME)/.cache/dialogue/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_FLAVOUR)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "dialogue needs Python 3.11 or newer ($(PYTHON) is older); run: make PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1 || { \
		echo "Building llama-cpp-python $(LLAMA_VERSION) ($(LLAMA_FLAVOUR)): about 10 minutes on 2 cores, once..."; \
		CMAKE_ARGS="$(LLAMA_CMAKE)" $(BIN)/python -m pip wheel --progress-bar off --no-cache-dir --no-deps \
			"llama-cpp-python==$(LLAMA_VERSION)" -w $(WHEELS); }
	$(BIN)/python -m pip install --progress-bar off --no-deps $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	@echo "Installing dependencies..."
	$(BIN)/python -m pip install --progress-bar off -c constraints.txt -e '.[all,dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
