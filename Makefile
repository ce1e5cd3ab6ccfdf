# Every target sets itself up from a bare clone: the first one that needs the
# virtual environment creates it.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PEER_VENV := .venv-peer
PEER_PY := $(PEER_VENV)/bin/python
STAMP := $(VENV)/.installed
PEER_STAMP := $(PEER_VENV)/.installed
SIDECAR ?=

.PHONY: install install-peer proto-gen test test-unit test-typing typecheck test-sidecar e2e test-e2e test-interop demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# A path-based editable install: mypy finds the package, and a folder named
	# durable beside a user's script cannot shadow it.
	$(PY) -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

# The official durabletask SDK lives in its own environment: its generated
# protobuf module defines the same message names as ours.
install-peer: $(PEER_STAMP)

$(PEER_STAMP): pyproject.toml
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_PY) -m pip install --quiet --upgrade pip
	$(PEER_PY) -m pip install --quiet 'durabletask==1.12.0'
	touch $(PEER_STAMP)

proto-gen: $(STAMP)
	$(PY) tools/proto_gen.py

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

typecheck: $(STAMP)
	$(PY) -m mypy durable examples tests/typing/accept

# Snippets mypy must accept, and snippets it must reject with given messages.
test-typing: $(STAMP)
	$(PY) -m pytest -q tests/typing

# The embedded sidecar's own protocol tests, over real gRPC on 127.0.0.1.
test-sidecar: $(STAMP)
	$(PY) -m pytest -q tests/sidecar

# The official durabletask SDK, in its own process and environment, against our sidecar.
test-interop: $(STAMP) $(PEER_STAMP)
	DURABLE_PEER_PYTHON=$(abspath $(PEER_PY)) $(PY) -m pytest -q tests/interop

# End to end: on the embedded sidecar, then on the official in-memory sidecar.
# With SIDECAR=host:port, only against that running sidecar.
e2e: test-e2e
test-e2e: $(STAMP) $(PEER_STAMP)
ifeq ($(SIDECAR),)
	$(PY) -m pytest -q tests/e2e
	DURABLE_SIDECAR=official DURABLE_PEER_PYTHON=$(abspath $(PEER_PY)) $(PY) -m pytest -q tests/e2e
else
	DURABLE_SIDECAR=$(SIDECAR) $(PY) -m pytest -q tests/e2e
endif

test: test-unit typecheck test-typing test-sidecar test-interop test-e2e

# durable against the official SDK on both sidecars; rewrites BENCHMARKS.md.
# Takes about 30 minutes on 2 cores; `.venv/bin/python -m bench --quick` is a smoke run.
bench: $(STAMP) $(PEER_STAMP)
	$(PY) -m bench

# A real orchestration on the embedded sidecar, printed step by step.
demo: $(STAMP)
	$(PY) -m examples.demo

clean:
	rm -rf $(VENV) $(PEER_VENV) .mypy_cache .pytest_cache
