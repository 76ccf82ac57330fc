# The two commands: `make demo` runs the main job, `make test` runs the whole test suite.
# Both work on a fresh machine with python3, pip, make and apt (and node/npm for the
# scan page's face model): they install what they need first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
WEB    := src/pulseloop/server/static/vendor/mediapipe/.installed-$(shell cksum web/package-lock.json | cut -d' ' -f1)

.PHONY: demo test lint bench install web

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[vitals,postgres,otel,dev]'
	touch $(STAMP)

$(WEB): web/package-lock.json scripts/install-web-deps.sh
	bash scripts/install-web-deps.sh
	touch $(WEB)

install: $(STAMP)

web: $(WEB)

demo: $(STAMP)
	$(VENV)/bin/pulseloop demo

# pytest exit 5 means "no tests collected": a broken collection, so it fails too.
# The suite runs every storage test on SQLite and on PostgreSQL: it starts a throwaway
# server itself (as the postgres user, on 127.0.0.1) and fails if none can be started.
test: $(STAMP) $(WEB)
	bash scripts/install-postgres.sh
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy
	$(PY) -m pytest -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/engine.py
	$(PY) bench/vitals.py
