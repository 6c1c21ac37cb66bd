# voicepi: `make demo` and `make test` install what they need themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := portaudio19-dev libsystemd-dev pkg-config pulseaudio pulseaudio-utils \
	alsa-utils libasound2-plugins espeak-ng sox debootstrap systemd-container shellcheck \
	libsndfile1
PYTEST_ARGS ?=

.PHONY: all deps venv docs test lint typecheck pytest floors demo bench clean

all: test

# System packages: only what is missing, with one apt-get update.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -m venv --help >/dev/null 2>&1; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | deps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: deps $(STAMP)

lint: venv
	$(VENV)/bin/ruff check daemon hw tests
	$(VENV)/bin/ruff format --check daemon hw tests

typecheck: venv
	$(VENV)/bin/mypy --strict daemon hw

pytest: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The declared minimum versions are the tested ones: the floor of every dependency
# (tests/floors.py reads pyproject.toml) in a venv of its own, rebuilt only when
# pyproject.toml changes, runs the session tests.
FLOORS_VENV := .cache/floors-venv
FLOORS_STAMP := $(FLOORS_VENV)/.installed
FLOORS_TESTS := tests/test_session.py tests/test_session_e2e.py tests/test_frame_cap.py

$(FLOORS_STAMP): pyproject.toml tests/floors.py | deps
	@test -x $(FLOORS_VENV)/bin/python || $(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install -q $$($(PYTHON) tests/floors.py)
	@touch $@

floors: $(FLOORS_STAMP)
	PYTHONPATH=$(CURDIR) $(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOORS_TESTS)

test: lint typecheck pytest floors

demo: venv
	$(VENV)/bin/voicepi demo

bench: venv
	$(PY) -m tests.bench

docs: venv
	$(PY) -m tests.gen_docs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
