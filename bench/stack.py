"""The real processes a benchmark runs against: web (uvicorn), a Celery worker, the runtime."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import django
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_portal.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from deployments.deploy import deploy  # noqa: E402
from deployments.models import Deployment  # noqa: E402


def start(args, env=None):
    return subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


@contextlib.contextmanager
def running_stack(extra=()):
    call_command("migrate", verbosity=0)
    web_port = settings.CONTROL_PLANE_URL.rsplit(":", 1)[1]
    commands = [
        # Persistent database connections, as in production (the test harness turns them
        # off for the test server's sake).
        ([sys.executable, "-m", "uvicorn", "workers_portal.asgi:application", "--port", web_port],
         {"CONN_MAX_AGE": "60"}),
        ([sys.executable, "-m", "celery", "-A", "workers_portal", "worker", "-c", "2"], None),
        ([sys.executable, "manage.py", "runtime"], None),
        *extra,
    ]  # fmt: skip
    procs = []
    try:
        # Started inside the try: one that cannot start (a missing binary) stops the others.
        for args, env in commands:
            procs.append(start(args, env))
        wait_http(settings.CONTROL_PLANE_URL + "/login/")
        wait_http(settings.RUNTIME_URL + "/healthz")
        yield
    finally:
        for p in procs:
            os.killpg(p.pid, 15)


# The function every benchmark serves: the baseline's, without its server.
SOURCE = (ROOT / "bench" / "baseline.ts").read_text().split("\nconst port")[0]


def public_worker(tenant, name: str):
    from workers.models import Worker

    return Worker.objects.update_or_create(tenant=tenant, name=name, defaults={"public": True})[0]


def ready_copy(worker, artifact) -> Deployment:
    """A ready deployment of already built code, made without a build (for load set-ups)."""
    return Deployment.objects.create(
        worker=worker, tenant=worker.tenant, source=SOURCE, status="ready",
        functions=["hello"], artifact=artifact,
    )  # fmt: skip


def deploy_and_wait(worker, source) -> Deployment:
    d = deploy(worker, source)
    while not d.is_terminal:
        time.sleep(0.02)
        d.refresh_from_db()
    assert d.status == Deployment.Status.READY, d.error_message
    return d


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
