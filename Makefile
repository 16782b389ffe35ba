# Coelho: `make up` runs the local platform, `make test` runs the whole test suite.
# Both work from a clean clone: they create .venv, install the project (with dev extras),
# install missing system packages (scripts/install-system-deps.sh) and resolve the Kafka jars.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
COELHO := $(VENV)/bin/coelho
# Optional: `make up SERVICES=kafka,redis,mlflow`, `make test PYTEST_ARGS="tests/platform -x"`.
SERVICES ?=
PYTEST_ARGS ?=

.PHONY: help install lock system-deps kafka-jars ui up down status test lint format

help:
	@echo "make up       install, then start Kafka, Redis, MLflow, Dagster, the API and the producers"
	@echo "make down     stop every local service (data under \$${COELHO_HOME:-.coelho} is kept)"
	@echo "make status   show each service: state, URL, pid, memory, log file"
	@echo "make test     install, then run the whole test suite (real Kafka, Redis, MLflow)"
	@echo "make ui       build the web UI (coelho_serving/ui, npm ci + build when stale)"
	@echo "make lint     ruff check and format check"
	@echo "make lock     re-resolve requirements*.lock after editing pyproject.toml's dependencies"
	@echo "make k3d-up   (needs Docker) k3d cluster, image, Helm chart; make k3d-down removes it"

$(PY):
	$(PYTHON) -m venv $(VENV)

# The exact versions of requirements-dev.lock (every machine installs the same set), then the
# project itself; reinstalls when the lock or pyproject.toml changes.
$(VENV)/.installed: pyproject.toml requirements-dev.lock | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	@touch $@

# Re-resolve both locks after editing pyproject.toml's dependencies (newest allowed versions
# where the current pins no longer fit; `make lock UPGRADE=1` moves every pin).
LOCK_ARGS := --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --no-header \
	--annotation-style line $(if $(UPGRADE),--upgrade)
lock: install
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_ARGS) -o requirements-dev.lock
	cp requirements-dev.lock requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra s3 $(LOCK_ARGS) -o requirements.lock

install: $(VENV)/.installed

system-deps:
	@scripts/install-system-deps.sh

kafka-jars: install system-deps
	$(PY) -m coelho.platform

# The web UI (served by the API at /ui): npm ci + build when missing or stale; needs Node 20.19+.
ui:
	@scripts/build-ui.sh

up: install system-deps kafka-jars ui
	$(COELHO) up $(if $(SERVICES),--services $(SERVICES))

down: install
	$(COELHO) down

status: install
	$(COELHO) status

test: install system-deps kafka-jars ui
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Kubernetes on k3d: make k3d-up / k3d-down (see README, Kubernetes).
include deploy/k3d.mk
