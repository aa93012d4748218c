# reverie: `make play` to play, `make test` to test. Both set up .venv on first use.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip --disable-pip-version-check
EXTRAS := text,dev,worlds

.PHONY: setup play test test-all check lint format browser clean

setup: .venv/.stamp

# torch goes in first and pinned: a bare torch requirement would pull a multi-GB CUDA build.
.venv/.stamp: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

play: setup
	.venv/bin/reverie play --open

lint: setup
	.venv/bin/ruff check reverie tests runs
	.venv/bin/ruff format --check reverie tests runs
	.venv/bin/mypy

format: setup
	.venv/bin/ruff format reverie tests runs
	.venv/bin/ruff check --fix reverie tests runs

# Debian's Chromium drives the browser tests; installed here when we are root and it is missing.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; fi

# The suite runs in two worker processes (pytest-xdist): most tests are one-thread work, so on a
# 2-core machine it takes about 3m15s instead of 5m10s in one process (2-core AMD EPYC, AVX2).
# Every test must also pass on a busy machine, which two workers make of it. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

test: setup browser lint
	.venv/bin/pytest -q -n $(TEST_WORKERS)

test-all: setup browser lint
	.venv/bin/pytest -q -n $(TEST_WORKERS) -m ''

check: lint

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache *.egg-info
