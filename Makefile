# voicepi: `make demo` and `make test` install what they need themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# PyAudio and systemd-python come from Debian (prebuilt for every architecture, no compiler
# on a bare image or a Pi); the venv sees them through --system-site-packages.
APT_PACKAGES := python3-venv python3-pyaudio python3-systemd pulseaudio pulseaudio-utils \
	alsa-utils libasound2-plugins espeak-ng sox debootstrap systemd-container shellcheck \
	libsndfile1
# Only for a Python that does not see Debian's packages (pyenv, a self-built one): pip then
# builds PyAudio and systemd-python, which needs a compiler and the headers.
BUILD_PACKAGES := gcc libc6-dev python3-dev portaudio19-dev libsystemd-dev pkg-config
PYTEST_ARGS ?=
ARM64_SUITES ?=

.PHONY: all deps venv docs test lint typecheck pytest floors demo bench arm64-check clean

all: test

# System packages: only what is missing, with one apt-get update.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if ! $(PYTHON) -c 'import pyaudio, systemd.journal' >/dev/null 2>&1; then \
		for p in $(BUILD_PACKAGES); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
		done; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | deps
	@# A venv without pip is a half-made one (no ensurepip at the time): make it again.
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv --system-site-packages $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: deps $(STAMP)

# Tools through the venv's python: with --system-site-packages a tool the base Python
# already has is not installed again, so it may have no script in .venv/bin.
lint: venv
	$(PY) -m ruff check daemon hw tests
	$(PY) -m ruff format --check daemon hw tests

typecheck: venv
	$(PY) -m mypy --strict daemon hw

pytest: venv
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

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
	$(PY) -m daemon.cli demo

bench: venv
	$(PY) -m tests.bench

# voicepi on arm64 Debian under qemu-user-static (root; minutes; not part of `make test`).
arm64-check: venv
	@dpkg-query -W -f='$${Status}' qemu-user-static 2>/dev/null | grep -q "install ok installed" || \
		{ SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq qemu-user-static >/dev/null; }
	$(PY) -m tests.system.arm64_check $(ARM64_SUITES)

docs: venv
	$(PY) -m tests.gen_docs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
