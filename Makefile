# The README's commands. Everything installs into .venv; nothing touches the system Python.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
SERVE_PORT ?= 8000
WORKERS ?= 2
PYTEST_ARGS ?=

.PHONY: run serve demo test lint typecheck pytest install install-dev assets clean bench-ingest \
	prerequisites bench-dashboard test-concurrency dist docs

$(BIN)/python:
	@$(PYTHON) tools/prerequisites.py run
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	# GrowthBook's statistics, a second opinion the experiment tests check ours against. Its
	# metadata pins numpy<2 and pandas<2, which its frequentist and Bayesian modules do not
	# need (numpy, scipy, pydantic, packaging: all installed above); hence --no-deps.
	$(BIN)/pip install --quiet --no-deps 'gbstats==0.8.0'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed assets
install-dev: $(VENV)/.installed-dev assets

## make assets: the dashboard's browser libraries and world map, from the npm packages pinned in
## assets/package-lock.json, built into flask_tracking/static/vendor/ (git-ignored). Python
## fetches each tarball from the npm registry and checks it against the lock file's integrity
## hash: no Node.js needed. The stamp lives in vendor/, so deleting vendor/ rebuilds it.
## (.PHONY: assets/ is also a directory.)
VENDOR := flask_tracking/static/vendor
assets: $(VENDOR)/.built

$(VENDOR)/.built: assets/package.json assets/package-lock.json tools/build_assets.py | $(BIN)/python
	$(BIN)/python tools/build_assets.py
	touch $@

## make dist: the wheel and sdist in dist/, with the built assets inside (pip install
## dist/flask_tracking-*.whl needs no Node.js and no checkout)
dist: install-dev
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

## make run: install, migrate the embedded SQLite database in the data directory (DATA_DIR:
## ~/.local/share/flask-tracking, or instance/ when an older version left its data there), serve on :5000
run: install
	$(BIN)/flask-tracking db upgrade
	@echo "Flask-Tracking is running on http://$(HOST):$(PORT)  (Ctrl+C to stop)"
	$(BIN)/flask-tracking run --debug --host $(HOST) --port $(PORT)

## make serve: the production server (Granian) on :8000
serve: install
	$(BIN)/flask-tracking db upgrade
	$(BIN)/flask-tracking serve --host $(HOST) --port $(SERVE_PORT) --workers $(WORKERS)

## make demo: a demo user and site with a few weeks of visits
demo: install
	$(BIN)/flask-tracking db upgrade
	$(BIN)/flask-tracking demo

## make test: lint, type checks, then the whole suite on SQLite (and on PostgreSQL when
## TEST_DATABASE_URL is set, as .ci/run does)
test: prerequisites install-dev lint typecheck docs pytest

## Chromium for the browser tests (and the venv module): installed with apt-get when running as
## root on Debian, otherwise one line saying what to install, before anything else runs.
prerequisites:
	@$(PYTHON) tools/prerequisites.py test

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Containerfile

typecheck:
	$(BIN)/mypy

## make docs: the documentation site (MkDocs, Material) from docs/ into build/site, warnings
## as errors; the configuration and API references are generated from the code (docs/hooks.py)
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## The suite runs on PYTEST_WORKERS processes (pytest-xdist; each gets its own PostgreSQL
## database) under coverage.py, except the tests marked `concurrency`, which load the machine
## themselves and time what they see: they run after, alone. Both legs add to one
## measurement, reported (and held to pyproject's fail_under) once they are done.
## HTML: $(BIN)/coverage html -d build/coverage
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest --cov --cov-append --cov-report= --cov-fail-under=0
LEG := $(PYTEST) -n $(PYTEST_WORKERS) -m "not concurrency" $(PYTEST_ARGS) && \
	$(PYTEST) -m concurrency $(PYTEST_ARGS)
pytest:
	$(BIN)/coverage erase
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "== pytest on SQLite, then on PostgreSQL ($$TEST_DATABASE_URL)"; \
	  (export TEST_DATABASE_URL= && $(LEG)) && $(LEG); \
	else \
	  echo "== PostgreSQL leg SKIPPED: TEST_DATABASE_URL is not set (.ci/run sets it)."; \
	  echo "== pytest on SQLite"; \
	  $(LEG); \
	fi
	$(BIN)/coverage report

## make test-concurrency: only the mixed-writer load of tests/concurrency (many threads and
## processes writing at once against a real server), for longer: CONCURRENCY_SECONDS (120).
## `make test` runs it too, for 15 s, on each leg's database.
CONCURRENCY_SECONDS ?= 120
test-concurrency: install-dev
	CONCURRENCY_SECONDS=$(CONCURRENCY_SECONDS) $(BIN)/pytest -m concurrency -s $(PYTEST_ARGS)

## make bench-ingest: load the production server on loopback with wrk (30 s a phase and a 60 s
## sustained phase, three runs, the realistic request mix); prints events/s, stored/accepted,
## p50/p99, the sustained backlog, CPU per event, peak memory and the bare-WSGI ratio
## (docs/benchmarks.md). BENCH_ARGS passes options to bench/ingest.py, e.g. --mix simple.
BENCH_RUNS ?= 3
BENCH_ARGS ?=
bench-ingest: install-dev
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk || \
	  (apt-get update && apt-get install -y wrk) || \
	  { echo "bench-ingest needs wrk: apt-get install -y wrk"; exit 2; }
	$(BIN)/python bench/ingest.py --runs $(BENCH_RUNS) $(BENCH_ARGS)

## make bench-dashboard: generate BENCH_EVENTS events over a year (once; bench/data/, never
## committed: the SQL database and the event store beside it), then time the full dashboard
## through the production server for 7d/30d/12 months, unfiltered, filtered and by page,
## against DuckDB computing the same page from the raw events, with bytes per event, memory
## and the derived-data rebuild time (docs/benchmarks.md). BENCH_DATABASE_URL may name a
## PostgreSQL database for accounts and sites (the events stay in BENCH_EVENTS_URL).
BENCH_EVENTS ?= 1000000
BENCH_DB := bench/data/events-$(BENCH_EVENTS).db
BENCH_DATABASE_URL ?= sqlite:///$(BENCH_DB)
BENCH_EVENTS_URL ?= duckdb:///bench/data/events-$(BENCH_EVENTS).duckdb
bench-dashboard: install-dev
	@if [ ! -f "$(patsubst duckdb:///%,%,$(BENCH_EVENTS_URL))" ]; then \
	  $(BIN)/python bench/generate.py --database-url '$(BENCH_DATABASE_URL)' \
	    --events-url '$(BENCH_EVENTS_URL)' \
	    --events $(BENCH_EVENTS) --days 365 --paths 1000 --seed 1; \
	fi
	$(BIN)/python bench/dashboard.py --database-url '$(BENCH_DATABASE_URL)' \
	  --events-url '$(BENCH_EVENTS_URL)' --rebuild $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
