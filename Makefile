.PHONY: run test check lint format setup setup-dev clean bench

PY := .venv/bin/python

run:            ## set up, start Redis if needed, and run web, worker, beat and runtime
	bin/run

setup:
	bin/setup

setup-dev:
	bin/setup dev

test: setup-dev     ## lint, migration check and the whole suite against private Postgres and Redis
	bin/with-test-services $(MAKE) --no-print-directory check

check: lint
	$(PY) manage.py makemigrations --check --dry-run
	.venv/bin/pytest --liveserver "$$LIVE_SERVER_ADDRESS"

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache
	NO_COLOR=1 .venv/bin/deno check --quiet deployments/runtime/host.ts deployments/runtime/cell.ts bench/baseline.ts

format: setup-dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:
	rm -rf var .pytest_cache .ruff_cache

bench: setup-dev    ## latency, throughput (vs bare Deno.serve and workerd), memory, logs, releases, runs, scale, programs
	bin/ensure-package wrk wrk
	bin/ensure-package npm npm
	cd bench && npm install --no-audit --no-fund --loglevel=error
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/run.py
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/throughput.py
	RUNTIME_TIMEOUT_SECONDS=30 RUNTIME_PROCESSES=2 bin/with-test-services $(PY) bench/throughput.py
	RUNTIME_TIMEOUT_SECONDS=30 RUNTIME_BENCH_NO_REPORTS=1 BENCH_ONLY=platform BENCH_IDLE_DEPLOYMENTS=1 \
	  bin/with-test-services $(PY) bench/throughput.py
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/logs.py
	bin/with-test-services $(PY) bench/releases.py
	bin/with-test-services $(PY) bench/runs.py
	bin/with-test-services $(PY) bench/scale.py
	bin/with-test-services $(PY) bench/programs.py
	bin/with-test-services $(PY) bench/idle.py
	RUNTIME_SPARES=24 bin/with-test-services $(PY) bench/idle.py
	RUNTIME_TIMEOUT_SECONDS=30 bin/with-test-services $(PY) bench/neighbours.py
