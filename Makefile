# The two commands: `make run` (local stack) and `make test` (whole suite). Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STAGE  ?= dev

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test test-fast lint package deploy destroy clean browser

# uv installs the pinned requirements from PyPI in seconds where pip took 70 s (a fresh clone's
# `make test` waits for it); pip itself only installs uv, pinned too. Bytecode is written as modules are
# first imported, into .venv/pycache (so never beside the sources, nor into chalicelib's bundle), even
# where PYTHONDONTWRITEBYTECODE is set: without .pyc files every process the tests start compiled
# botocore and moto again (60 % slower), and compiling all of site-packages at install took 30 s of
# which the suite uses a fraction.
export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache
export PYTHONDONTWRITEBYTECODE :=
UV_VERSION := 0.13.9
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements-dev.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fila up

# The dashboard test drives Debian's chromium with playwright (playwright's own browser download
# cannot work here), so `make test` installs it when missing.
browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }

# The whole suite, three test files at a time (end-to-end tests mostly wait on subprocesses: on this
# 2-core machine three workers took 265 s, four 254 s, with one more test failing of load); the tests
# sharing a fixture's stack or emulator run in one worker (xdist_group). mypy runs beside them (the
# workers leave about half a core idle) and fails the target as a failing test does.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/mypy & mypy=$$!; \
	  $(BIN)/python -m pytest -n 3 --dist loadgroup; tests=$$?; \
	  wait $$mypy && exit $$tests

# The unit tier: the job system on the in-memory store and queues, no emulator, in seconds.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

package: $(STAMP)
	$(BIN)/fila package --stage $(STAGE)

# make deploy STAGE=dev: the caller's AWS account (or AWS_ENDPOINT_URL); the README says what it needs.
deploy: $(STAMP)
	$(BIN)/fila deploy --stage $(STAGE)

# make destroy STAGE=dev: removes what make deploy made; keeps the tables and the bucket.
destroy: $(STAMP)
	$(BIN)/fila destroy --stage $(STAGE)

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
