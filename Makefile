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

.PHONY: install install-peer proto-gen test test-unit test-typing typecheck e2e test-e2e test-interop demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
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
	$(PY) -m mypy durable

test: test-unit typecheck

clean:
	rm -rf $(VENV) $(PEER_VENV) .mypy_cache .pytest_cache
