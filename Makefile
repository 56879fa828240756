# The two commands: `make up` runs the appliance, `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: up test bootstrap lint bench

bootstrap:
	@scripts/bootstrap.sh

up: bootstrap
	@scripts/build-frontend.sh || echo "[frontend] not built (see above): the API works, / answers 404" >&2
	@exec $(VENV)/bin/collabry dev up

test:
	@scripts/bootstrap.sh --test
	@scripts/build-frontend.sh
	@scripts/test.sh

lint:
	$(VENV)/bin/ruff check src tests

bench: bootstrap
	@$(VENV)/bin/pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/bench.txt
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done
