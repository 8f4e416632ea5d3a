"""`make bench`, scale: the portal, the API and the log pages with 10,000 workers and
10 million log lines in Postgres, and what recording one invocation with one line costs.

Seeds (in SQL, minutes): 10,000 workers with a ready deployment each, 2,000 of them in one
tenant ("big", whose owner the pages are measured for) and 8,000 in 160 others; 10 million
console lines and 2 million invocations (a million lines and 200,000 invocations on the big
tenant's "hot" worker, which has 20 deployments, the rest spread), and the per-minute figures
of those invocations (per deployment and function, per tenant, with duration histograms).
Then each page or answer is asked for once untimed and 20 times timed, in process (Django's
test client: the cost of the view, its queries and its template, without the network) and
its p50/p95 printed.

Recording: 20 batches of 500 invocations with one line each go through the ingest as the
runtime sends them; CPU time is measured separately for this Python process and for its
Postgres backend (/proc/<pid>/stat), per invocation with its line.

Runs against the private Postgres of bin/with-test-services. Sizes: BENCH_WORKERS,
BENCH_LINES. BENCH_REUSE=1 measures again what an earlier run seeded in the same database.
"""

import json
import os
import sys
import time
from datetime import timedelta

import httpx
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from procs import cpu_seconds
from seeding import request_id, request_id_sql, seed_rollups
from stack import pct, settings, start, wait_http

from deployments.models import Artifact, Deployment
from telemetry import partitions
from telemetry.ingest import store_runtime_batch
from tenancy.models import Membership, Tenant
from workers.models import Worker

WORKERS = int(os.environ.get("BENCH_WORKERS", "10000"))
LINES = int(os.environ.get("BENCH_LINES", "10000000"))
INVOCATIONS = LINES // 5
REPEAT = 20
TRIGRAMS = "deployments_logentry_message_trigrams"  # deployments/migrations/0016


def seed():
    # The seeded calls spread over the last 24 hours: yesterday gets its day partition too.
    partitions.ensure(today=timezone.now().date() - timedelta(days=1))
    big = Tenant.objects.create(slug="big", name="Big")
    tenants = [big] + [Tenant(slug=f"t{n}", name=f"Tenant {n}") for n in range(160)]
    Tenant.objects.bulk_create(tenants[1:])
    tenants = list(Tenant.objects.order_by("id"))
    artifact = Artifact.store("export async function hello() { return 1; }")
    workers = []
    for n in range(WORKERS):
        tenant = big if n < WORKERS // 5 else tenants[1 + n % 160]
        workers.append(Worker(tenant=tenant, name="hot" if n == 0 else f"w{n}"))
    Worker.objects.bulk_create(workers, batch_size=2000)
    workers = list(Worker.objects.order_by("id"))
    Deployment.objects.bulk_create(
        [Deployment(worker=w, tenant_id=w.tenant_id, source="x", source_hash="x", status="ready",
                    functions=["hello"], artifact=artifact, files={"index.ts": "x"})
         for w in workers],
        batch_size=2000,
    )  # fmt: skip
    # The hot worker was deployed 20 times: its pages read the lines of all its deployments.
    hot_worker = workers[0]
    Deployment.objects.bulk_create(
        [Deployment(worker=hot_worker, tenant_id=hot_worker.tenant_id, source="x", source_hash="x",
                    status="ready", functions=["hello"], artifact=artifact, files={"index.ts": "x"},
                    created=timezone.now() - timedelta(days=n + 1))
         for n in range(19)]
    )  # fmt: skip
    with connection.cursor() as c:
        c.execute("UPDATE workers_worker w SET production_id = d.id FROM deployments_deployment d "
                  "WHERE d.worker_id = w.id")  # fmt: skip
        hot = Deployment.objects.filter(worker=hot_worker).order_by("-created").first().pk
        c.execute(f"UPDATE workers_worker SET production_id = {hot} WHERE id = {hot_worker.pk}")  # noqa: S608
        ids = Deployment.objects.order_by("id").values_list("id", flat=True)
        first, last = ids.first(), ids.last()
        # Loaded as any bulk load: the text index is built once afterwards, not line by line.
        c.execute(f"DROP INDEX IF EXISTS {TRIGRAMS}")
        # A tenth of everything on the hot worker, the rest spread over every deployment.
        c.execute(f"""
            INSERT INTO deployments_invocation (request_id, deployment_id, tenant_id, function,
              trigger, status, status_code, error_message, duration_ms, attempt, started_at,
              created, cold, lines)
            SELECT {request_id_sql("g", "now() - (g % 1440) * interval '1 minute'")}, d.id,
              d.tenant_id, 'hello', 'http',
              CASE WHEN g % 20 = 0 THEN 'error' ELSE 'ok' END,
              CASE WHEN g % 20 = 0 THEN 500 ELSE 200 END, '', (g % 97) + 1, 1,
              now() - (g % 1440) * interval '1 minute', now(), g % 50 = 0, 5
            FROM generate_series(1, {INVOCATIONS}) g
            JOIN deployments_deployment d ON d.id = CASE WHEN g % 10 = 0 THEN {hot}
              ELSE {first} + (g % {last - first + 1}) END
        """)  # noqa: S608 - constants only
        c.execute("""
            INSERT INTO deployments_logentry (tenant_id, deployment_id, request_id, seq,
              function, timestamp, level, message)
            SELECT i.tenant_id, i.deployment_id, i.request_id, s, 'hello', i.started_at,
              CASE WHEN s = 4 THEN 'warn' ELSE 'log' END,
              'line ' || s || ' of ' || i.request_id ||
                CASE WHEN i.id % 100000 = 0 THEN ' needle' ELSE ' hay' END
            FROM deployments_invocation i, generate_series(0, 4) s
        """)
        seed_rollups(c)
        c.execute(
            f"CREATE INDEX {TRIGRAMS} ON deployments_logentry USING gin (upper(message) gin_trgm_ops)"
        )
        # As a table that has been in use is: vacuumed, so autovacuum does not start on the
        # fresh rows in the middle of the measurements.
        c.execute("VACUUM ANALYZE")
    owner = get_user_model().objects.create_user("owner", "o@example.com", "pw")
    Membership.objects.create(user=owner, tenant=big, role=Membership.Role.OWNER)
    return owner, big


def measure(client: Client, label: str, url: str, **headers) -> tuple[str, float, float]:
    client.get(url, **headers)  # not timed: the first request also loads its templates
    took = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = client.get(url, **headers)
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 286), (url, response.status_code)
    return label, pct(took, 50), pct(took, 95)


def measure_http(pages, session: str) -> list[tuple[float, float]]:
    """The same requests through the web process as production runs it (uvicorn, pooled
    connections), with the member's session cookie or the API key."""
    port = settings.CONTROL_PLANE_URL.rsplit(":", 1)[1]
    web = start([sys.executable, "-m", "uvicorn", "workers_portal.asgi:application", "--port",
                 port], {"CONN_MAX_AGE": "60"})  # fmt: skip
    found = []
    try:
        wait_http(settings.CONTROL_PLANE_URL + "/login/")
        with httpx.Client(base_url=settings.CONTROL_PLANE_URL, timeout=60) as http:
            for _, label, url, headers in pages:
                sent = {"Host": "127.0.0.1"}
                if "HTTP_AUTHORIZATION" in headers:
                    sent["Authorization"] = headers["HTTP_AUTHORIZATION"]
                else:
                    sent["Cookie"] = f"sessionid={session}"
                if "HTTP_HX_REQUEST" in headers:
                    sent["HX-Request"] = "true"
                took = []
                for n in range(REPEAT + 1):
                    started = time.perf_counter()
                    response = http.get(url, headers=sent)
                    if n:  # the first is not timed, as in process
                        took.append((time.perf_counter() - started) * 1000)
                    assert response.status_code in (200, 286), (label, response.status_code)
                found.append((pct(took, 50), pct(took, 95)))
    finally:
        os.killpg(web.pid, 15)
    return found


def backend_cpu() -> float:
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        return cpu_seconds(c.fetchone()[0])


def recording_cost(deployment: Deployment) -> tuple[float, float]:
    """CPU microseconds per invocation with one line: (Python, Postgres)."""
    batches = 20
    per_batch = 500
    bodies = []
    for _ in range(batches):
        now = timezone.now().isoformat()
        ids = [request_id() for _ in range(per_batch)]
        bodies.append(json.dumps({
            "invocations": [{"requestId": i, "deploymentId": str(deployment.code),
                             "function": "hello", "status": "ok", "statusCode": 200,
                             "durationMs": 3.2, "startedAt": now, "cold": False, "lines": 1}
                            for i in ids],
            "logs": [{"requestId": i, "deploymentId": str(deployment.code), "seq": 0,
                      "function": "hello", "timestamp": now, "level": "log",
                      "message": "hello called"} for i in ids],
        }).encode())  # fmt: skip
    store_runtime_batch(bodies.pop())  # warm: connection, plan cache
    py0, pg0 = time.process_time(), backend_cpu()
    for body in bodies:
        store_runtime_batch(body)
    py, pg = time.process_time() - py0, backend_cpu() - pg0
    calls = len(bodies) * per_batch
    return py / calls * 1e6, pg / calls * 1e6


def main():
    call_command("migrate", verbosity=0)
    started = time.monotonic()
    if os.environ.get("BENCH_REUSE") and Tenant.objects.filter(slug="big").exists():
        big = Tenant.objects.get(slug="big")
        owner = get_user_model().objects.get(username="owner")
    else:
        owner, big = seed()
    seeded = time.monotonic() - started
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(owner)
    hot = Worker.objects.get(tenant=big, name="hot")
    deployment = hot.production
    key_client = Client(HTTP_HOST="127.0.0.1")
    from workers.api_keys import issue_key

    key = issue_key(big, "bench", ["read"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    with connection.cursor() as c:
        ids = list(hot.deployments.values_list("pk", flat=True))
        c.execute("SELECT max(id), (array_agg(request_id ORDER BY id DESC))[1] "
                  "FROM deployments_logentry WHERE deployment_id = ANY(%s)", [ids])  # fmt: skip
        newest, one_request = c.fetchone()
    # What the pages are asked, as a member's browser and a CI system ask them.
    pages = [
        (client, "dashboard (first 50 of 2,000 workers, tenant chart)", "/", {}),
        (client, "worker page (Overview, health, chart)", f"/workers/{hot.code}/", {}),
        (client, "deployment page (two charts)", f"/deployments/{deployment.code}/", {}),
        (client, "live logs page", f"/workers/{hot.code}/logs/", {}),
        (client, "live tail partial (nothing new)",
         f"/workers/{hot.code}/logs/tail/?cursor=999999999999", {"HTTP_HX_REQUEST": "true"}),
        (client, "live tail partial (500 new lines)",
         f"/workers/{hot.code}/logs/tail/?cursor={newest - 5000}", {"HTTP_HX_REQUEST": "true"}),
        (client, "log search, a rare word (1M lines of the worker)",
         f"/workers/{hot.code}/logs/?q=needle", {}),
        (client, "log search, a word in every line", f"/workers/{hot.code}/logs/?q=hay", {}),
        (client, "logs of one request (filter)",
         f"/workers/{hot.code}/logs/?request={one_request}", {}),
        (client, "one invocation's page", f"/invocations/{one_request}/", {}),
        (client, "invocation history", f"/workers/{hot.code}/invocations/", {}),
        (client, "invocation history, errors only",
         f"/workers/{hot.code}/invocations/?status=error", {}),
        (client, "chart partial, 30 days", f"/workers/{hot.code}/chart/?range=30d", {}),
        (key_client, "API: GET /api/workers (first 50 of 2,000)", "/api/workers", auth),
        (key_client, "API: a worker's invocations", f"/api/workers/{hot.code}/invocations", auth),
        (key_client, "API: logs poll", f"/api/workers/{hot.code}/logs/poll", auth),
    ]  # fmt: skip
    rows = [measure(c, label, url, **headers) for c, label, url, headers in pages]
    through_http = measure_http(pages, client.cookies["sessionid"].value)
    python_us, postgres_us = recording_cost(deployment)
    print(f"\nScale: {WORKERS} workers, {LINES} log lines, {INVOCATIONS} invocations "
          f"(seeded in {seeded:.0f} s); {REPEAT} requests each, in process")  # fmt: skip
    print("| page or answer | in process p50 / p95 ms | through uvicorn p50 / p95 ms |")
    print("|---|---|---|")
    for (label, p50, p95), (h50, h95) in zip(rows, through_http, strict=True):
        print(f"| {label} | {p50:.0f} / {p95:.0f} | {h50:.0f} / {h95:.0f} |")
    print("\nRecording one invocation with one line (batches of 500, as the runtime sends them)")
    print("| Python CPU us | Postgres CPU us |\n|---|---|")
    print(f"| {python_us:.1f} | {postgres_us:.1f} |")


if __name__ == "__main__":
    main()
