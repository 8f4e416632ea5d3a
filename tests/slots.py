"""A pytest plugin bin/test-slow loads (`-p tests.slots`): imported before Django reads its
settings, it gives each pytest-xdist worker services of its own, so two slow tests can run
at once: a Redis database (queues, quotas and announcements), a runtime port, a live server
address for the runtime to call back, and a journal directory. Postgres needs nothing here:
pytest-django names each worker's database after it."""

import os
from pathlib import Path

worker = os.environ.get("PYTEST_XDIST_WORKER", "")
slots = os.environ.get("TEST_SLOTS", "")  # "runtime port:live port,..." one per worker
if worker and slots:
    number = int(worker.removeprefix("gw"))
    runtime, live = slots.split(",")[number].split(":")
    journal = Path(os.environ.get("TEST_SERVICE_LOGS", "/tmp")) / f"journal-{worker}"
    journal.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        REDIS_URL=f"{os.environ['REDIS_URL'].rsplit('/', 1)[0]}/{number + 1}",
        RUNTIME_PORT=runtime,
        RUNTIME_URL=f"http://127.0.0.1:{runtime}",
        CONTROL_PLANE_URL=f"http://127.0.0.1:{live}",
        DJANGO_LIVE_TEST_SERVER_ADDRESS=f"127.0.0.1:{live}",
        RUNTIME_JOURNAL_DIR=str(journal),
    )
