"""`make bench`: deploy-to-ready, cold and warm invocation latency, against a bare Deno.serve.

Runs the real stack (Postgres, Redis, a Celery worker, the web app, the runtime) started
by bin/with-test-services, and prints a table to paste into docs/benchmarks.md.
"""

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

from deployments.deno import deno_bin, deno_env  # noqa: E402
from deployments.deploy import deploy  # noqa: E402
from deployments.models import Deployment  # noqa: E402
from workers.models import Worker  # noqa: E402
from workers_portal.models import Tenant  # noqa: E402

SOURCE = (ROOT / "bench" / "baseline.ts").read_text().split("\nconst port")[0]
DEPLOYS = int(os.environ.get("BENCH_DEPLOYS", "10"))
CALLS = int(os.environ.get("BENCH_CALLS", "500"))


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


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def row(name, values, base=None):
    p50, p95 = pct(values, 50), pct(values, 95)
    ratio = f"{p50 / base:.2f}x" if base else ""
    print(f"| {name} | {len(values)} | {p50:.2f} | {p95:.2f} | {ratio} |")
    return p50


def timed_calls(client, url, n, body=b'{"name": "bench"}'):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.post(url, content=body)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    return out


def main():
    call_command("migrate", verbosity=0)
    web_port = settings.CONTROL_PLANE_URL.rsplit(":", 1)[1]
    procs = [
        start(
            [sys.executable, "-m", "uvicorn", "workers_portal.asgi:application", "--port", web_port]
        ),
        start([sys.executable, "-m", "celery", "-A", "workers_portal", "worker", "-c", "2"]),
        start([sys.executable, "manage.py", "runtime"]),
        start(
            [deno_bin(), "run", "--allow-net", str(ROOT / "bench" / "baseline.ts"), "8790"],
            deno_env(),
        ),
    ]
    try:
        wait_http(settings.CONTROL_PLANE_URL + "/login/")
        wait_http(settings.RUNTIME_URL + "/healthz")
        wait_http("http://127.0.0.1:8790/")
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        worker, _ = Worker.objects.get_or_create(tenant=tenant, name="hello")

        ready_ms, cold_ms, deployments = [], [], []
        for i in range(DEPLOYS + 1):
            source = f"{SOURCE}\n// deploy {i} {time.time()}\n"  # a new source every time
            t0 = time.perf_counter()
            d = deploy(worker, source)
            while not d.is_terminal:
                time.sleep(0.02)
                d.refresh_from_db()
            assert d.status == Deployment.Status.READY, d.error_message
            if i:  # the first deploy warms Deno's caches and the worker; not counted
                ready_ms.append((time.perf_counter() - t0) * 1000)
            deployments.append(d)

        with httpx.Client(timeout=30) as client:
            for d in deployments[1:]:
                cold_ms += timed_calls(client, f"{d.path_url}/api/invoke/hello", 1)
            url = f"{deployments[-1].path_url}/api/invoke/hello"
            timed_calls(client, url, 50)  # warm up
            warm = timed_calls(client, url, CALLS)
            timed_calls(client, "http://127.0.0.1:8790/", 50)
            base = timed_calls(client, "http://127.0.0.1:8790/", CALLS)

        print(
            f"deno {subprocess.run([deno_bin(), '--version'], capture_output=True, text=True).stdout.split()[1]}, "
            f"{os.cpu_count()} cores, database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[1]}"
        )
        print("\n| measure | n | p50 ms | p95 ms | p50 vs bare Deno.serve |")
        print("|---|---|---|---|---|")
        b = row("bare Deno.serve, warm call (baseline)", base)
        row("platform, warm call", warm, b)
        row("platform, cold call (first call of a new deployment)", cold_ms, b)
        row("deploy: submit to ready (local back end)", ready_ms)
    finally:
        for p in procs:
            os.killpg(p.pid, 15)


if __name__ == "__main__":
    main()
