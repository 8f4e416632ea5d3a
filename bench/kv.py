"""`make bench`, workers' key-value storage: what tenant code waits for a cached get, an
uncached get and a put (timed inside the isolate, with every call recorded as usual), against
two baselines run in the same command: the same loop over an in-memory Map in the isolate
(no storage at all), and one SELECT of a key by the bench process over a warm Postgres
connection (the storage's own floor).

Runs the real stack (uvicorn with persistent connections, Celery, the runtime) started by
bin/with-test-services.
"""

import os
import time
from pathlib import Path

import httpx
from django.db import connection
from stack import deploy_and_wait, pct, public_worker, running_stack, settings

from deployments.deploy import snapshot_bindings
from kv.models import Binding, Namespace
from tenancy.models import Tenant

ROUNDS = int(os.environ.get("BENCH_KV_ROUNDS", "10"))
PER_CALL = int(os.environ.get("BENCH_KV_PER_CALL", "100"))
WORKER = (Path(__file__).resolve().parent / "kv" / "worker.ts").read_text()


def main():
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        Tenant.objects.filter(pk=tenant.pk).update(
            max_invocations_per_minute=10**6, max_kv_operations_per_minute=10**7
        )
        worker = public_worker(tenant, "kv")
        worker.timeout_seconds = 60
        worker.save()
        ns, _ = Namespace.objects.get_or_create(tenant=tenant, name="bench")
        ns.entries.all().delete()
        Binding.objects.get_or_create(worker=worker, namespace=ns, name="BENCH")
        deployment = deploy_and_wait(worker, WORKER)
        assert snapshot_bindings(worker) == deployment.kv_bindings
        url = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke"
        results: dict[str, list[float]] = {name: [] for name in
                                           ("map", "cached", "uncached", "put", "select")}  # fmt: skip
        with httpx.Client(timeout=120) as client:

            def timings(fn: str, **payload) -> list[float]:
                answer = client.post(f"{url}/{fn}", json={"n": PER_CALL, **payload})
                assert answer.status_code == 200, answer.text
                return answer.json()["result"]

            timings("cachedGets")  # warm: the isolate, the connection to the control plane
            timings("uncachedGets", round=-1)
            for r in range(ROUNDS):
                results["map"] += timings("mapGets")
                results["cached"] += timings("cachedGets")[1:]  # the first is the write's read
                results["uncached"] += timings("uncachedGets", round=r)
                results["put"] += timings("puts", round=r)
        with connection.cursor() as cursor:
            for n in range(ROUNDS * PER_CALL):
                started = time.perf_counter()
                cursor.execute(
                    "SELECT value FROM kv_entry WHERE namespace_id = %s AND key = %s",
                    [ns.pk, f"put:0:{n % PER_CALL}"],
                )
                cursor.fetchone()
                results["select"].append((time.perf_counter() - started) * 1000)
    show(results)


def show(results):
    base_select = pct(results["select"], 50)
    print(f"\nWorkers' key-value storage: {ROUNDS} calls x {PER_CALL} operations each, timed in "
          "the isolate (ms per operation; the Map is below the timer's resolution)")  # fmt: skip
    print("| operation | p50 ms | p95 ms | p99 ms | p50 vs one SELECT |")
    print("|---|---|---|---|---|")
    rows = [
        ("in-isolate Map.get (baseline)", "map"),
        ("one SELECT, warm connection (baseline)", "select"),
        ("ctx.kv get, cached in the sandbox", "cached"),
        ("ctx.kv get, uncached", "uncached"),
        ("ctx.kv put", "put"),
    ]
    for label, key in rows:
        values = results[key]
        p50 = pct(values, 50)
        print(f"| {label} | {p50:.3f} | {pct(values, 95):.3f} | {pct(values, 99):.3f} | "
              f"{p50 / base_select:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
