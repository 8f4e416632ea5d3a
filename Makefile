.PHONY: run test test-fast test-runtime check lint lint-python lint-deno migrations format setup setup-dev clean bench bench-floors

PY := .venv/bin/python

run:            ## set up, start Redis if needed, and run web, worker, beat and runtime
	bin/run

setup:
	bin/setup

setup-dev:
	bin/setup dev

test: setup-dev     ## lint, migration check and the whole suite against private Postgres and Redis
	bin/with-test-services $(MAKE) --no-print-directory check

# Lint, the migration check and the data plane's unit tests run side by side (each is one
# process on one core); then the tests that need no Deno, Celery, browser or server, on all
# cores; then the slow ones three at a time, each worker with services of its own
# (bin/test-slow).
check:
	$(MAKE) --no-print-directory -j4 --output-sync=target lint-python lint-deno migrations test-runtime
	TEST_FAST=1 .venv/bin/pytest -m "not slow" -q -n auto
	bin/test-slow

# (test-fast does not even collect the fuzzer: collecting it builds a test per API operation,
# about 3 s of each worker's start, for tests the lane deselects anyway)
test-fast: setup-dev    ## the edit loop: every test not marked slow or fuzz (no Deno, Celery, browser or servers), on all cores
	TEST_FAST=1 bin/with-test-services .venv/bin/pytest -m "not slow and not fuzz" -q -p no:cacheprovider -n auto \
	  --ignore=tests/test_api_fuzz.py

# (all permissions: the journal's tests write to /dev/full, a disk that is always full, and
# Deno lets only that open a device)
test-runtime:   ## the data plane's unit tests (runtime/*_test.ts): no services, a second or two
	cd runtime && NO_COLOR=1 ../.venv/bin/deno test --quiet --allow-all

lint: lint-python lint-deno

migrations:
	$(PY) manage.py makemigrations --check --dry-run

lint-python:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache
	.venv/bin/mypy

# isolate.js runs as plain JavaScript (from a data: URL, no transpiling at a cold
# start): it is checked for types with implicit any allowed (runtime/isolate.check.json).
# The tenant programs the tests deploy are type-checked as the platform checks tenants' code.
lint-deno:
	DENO_NO_PACKAGE_JSON=1 NO_COLOR=1 .venv/bin/deno check --quiet bench/baseline.ts bench/sandbox.ts bench/floors/*.ts
	cd runtime && NO_COLOR=1 ../.venv/bin/deno check --quiet host.ts cell.ts network.ts *_test.ts
	cd runtime && NO_COLOR=1 ../.venv/bin/deno check --quiet --config isolate.check.json isolate.js
	cd runtime && NO_COLOR=1 ../.venv/bin/deno lint --quiet && ../.venv/bin/deno fmt --check --quiet
	cd tests/programs && NO_COLOR=1 ../../.venv/bin/deno check --quiet $$(find . -name '*.ts' -not -path './broken/*')

format: setup-dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .
	cd runtime && ../.venv/bin/deno fmt --quiet

clean:
	rm -rf var .pytest_cache .ruff_cache

bench: setup-dev    ## latency, throughput (vs bare Deno.serve and workerd), memory, a sandbox alone, logs, releases, runs, key-value, host lookups, scale, ingest, growth, programs, floors
	bin/ensure-package wrk wrk
	bin/ensure-package npm npm
	cd bench && npm install --no-audit --no-fund --loglevel=error
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/run.py
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/throughput.py
	RUNTIME_TIMEOUT_SECONDS=30 RUNTIME_PROCESSES=2 bin/with-test-services $(PY) bench/throughput.py
	RUNTIME_TIMEOUT_SECONDS=30 RUNTIME_BENCH_NO_REPORTS=1 BENCH_ONLY=platform BENCH_IDLE_DEPLOYMENTS=1 \
	  bin/with-test-services $(PY) bench/throughput.py
	DENO_NO_PACKAGE_JSON=1 .venv/bin/deno run -A --no-config bench/sandbox.ts
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/logs.py
	bin/with-test-services $(PY) bench/releases.py
	bin/with-test-services $(PY) bench/runs.py
	bin/with-test-services $(PY) bench/kv.py
	bin/with-test-services $(PY) bench/steps.py
	bin/with-test-services $(PY) bench/parked.py
	bin/with-test-services $(PY) bench/lookup.py
	bin/with-test-services $(PY) bench/scale.py
	bin/with-test-services $(PY) bench/ingest.py
	bin/with-test-services $(PY) bench/growth.py
	bin/with-test-services $(PY) bench/programs.py
	bin/with-test-services $(PY) bench/idle.py
	RUNTIME_SPARES=24 bin/with-test-services $(PY) bench/idle.py
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/neighbours.py
	$(MAKE) --no-print-directory bench-floors

bench-floors: setup-dev    ## the least a process boundary costs on the warm path, and memory per deployment held each way
	bin/ensure-package wrk wrk
	$(PY) bench/floors.py
