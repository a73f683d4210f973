# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Installed packages are compiled to bytecode once, at install: where PYTHONDONTWRITEBYTECODE is
# set (as in many CI and container shells) Python would otherwise compile every module again in
# every process it starts, and the tests start a server process many times.
export UV_COMPILE_BYTECODE := 1

.PHONY: run test install lint typecheck pytest migrate clean bench test-programs audit proto

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.synced

# The port `run` serves on: SKILLTREE_HTTP_PORT, as for `skilltree serve`. The links in the
# e-mails it writes lead there too, unless SKILLTREE_MAIL_PUBLIC_URL says otherwise.
RUN_PORT = $(or $(SKILLTREE_HTTP_PORT),8000)

# No worker runs beside this server to follow changes into the search index: `run` builds the
# index at every start (docs/search.md).
run: install
	$(BIN)/skilltree migrate upgrade
	$(BIN)/skilltree roadmap load-builtin
	$(BIN)/skilltree search reindex
	@echo "skilltree is starting: open http://127.0.0.1:$(RUN_PORT)/ in your browser (Ctrl+C stops it)"
	SKILLTREE_AUTH_COOKIE_SECURE=false \
	SKILLTREE_MAIL_PUBLIC_URL="$${SKILLTREE_MAIL_PUBLIC_URL:-http://127.0.0.1:$(RUN_PORT)}" \
	$(BIN)/skilltree serve  # plain http on localhost

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # the layering contracts of .importlinter (docs/architecture.md)

typecheck: install
	$(BIN)/mypy

# One pytest worker per core, plus one (pytest-xdist): many tests wait on a server process,
# a browser or a database, so one more worker keeps the cores busy. Every worker builds its
# own throwaway PostgreSQL database and Redis key prefixes, so workers never share state.
# Work stealing: a worker that runs out of tests takes some of another's, so the run does not
# end waiting on one worker's queue of slow server tests.
PYTEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print((os.cpu_count() or 1) + 1)")
pytest: install test-programs
	$(BIN)/python -m compileall -q -j 0 src tests  # the project's own bytecode, as above
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

# Programs the deployment and operations tests start (Debian packages), installed when missing;
# the browser tests (tests/web) drive Debian's Chromium (Playwright's download is never used).
APT_INSTALL := apt-get install -y -qq -o DPkg::Lock::Timeout=600
test-programs:
	@missing=""; \
	command -v nginx >/dev/null || missing="$$missing nginx"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v pg_dump >/dev/null || missing="$$missing postgresql-client"; \
	command -v mariadb-dump >/dev/null || missing="$$missing mariadb-client"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	test -x /usr/sbin/pgbouncer || missing="$$missing pgbouncer"; \
	ls /usr/lib/postgresql/*/bin/pg_basebackup >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && $(APT_INSTALL)$$missing; \
	fi

# The checks run side by side: the linters and the type checker use the minutes the test
# programs take to install on a fresh machine, and the test run's waits once it starts.
test:
	$(MAKE) -j 4 lint typecheck audit pytest

# Known vulnerabilities in every locked dependency (PyPI's advisory data, through pip-audit).
# pip-audit asks PyPI for each locked release (/pypi/<name>/<version>/json); where that service
# cannot be reached at all (a machine without the internet, a mirror that does not serve it) the
# audit says plainly that nothing was checked and does not fail the build. Where it can be
# reached, --strict fails on any vulnerability and on any package it could not check
# (docs/security.md, "Fuzzing and the dependency audit").
AUDIT_PROBE = https://pypi.org/pypi/pip/24.0/json
audit: install
	$(UV) export --frozen --no-hashes --no-emit-project --quiet -o $(VENV)/audit-requirements.txt
	@if $(BIN)/python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=15)" "$(AUDIT_PROBE)" 2>/dev/null; then \
		$(BIN)/pip-audit --strict --no-deps --disable-pip --progress-spinner off -r $(VENV)/audit-requirements.txt; \
	else \
		echo "make audit: NOT CHECKED. PyPI's advisory data ($(AUDIT_PROBE)) cannot be reached from this"; \
		echo "machine, so the locked dependencies were not checked for known vulnerabilities."; \
		echo "Run 'make audit' where pypi.org answers; it fails there on any finding."; \
	fi

# Needs PostgreSQL, Redis and wrk (installed here when missing and running as root).
# make bench DATABASE=sqlite: the embedded default; BENCH_ARGS passes more (--two-workers, --crowd).
DATABASE ?= postgresql
bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run --database $(DATABASE) $(BENCH_ARGS)

# The Python code of the gRPC definitions (proto/ -> src/skilltree/rpc/v1/), checked in;
# tests/rpc/test_generated.py fails when it is older than the definitions.
proto: install
	$(BIN)/python proto/generate.py src

clean:
	rm -rf $(TOOLS) $(VENV) .mypy_cache .pytest_cache .ruff_cache
