"""`make bench`, growth: the same figures at 1, 10 and 100 tenants and at 10, 100 and 1,000
deployments, so a reader sees what grows with what.

For each shape (tenants x deployments, the deployments spread evenly over the tenants, each
its own public worker serving bench/baseline.ts's function) a fresh stack is started (uvicorn,
a Celery worker, one runtime host process with the default limits), then:

* first calls: every deployment called once, one after another (ms per call);
* warm calls: the deployments called in turn, at least 200 calls and two rounds (ms per call:
  where a shape holds more than the host keeps loaded, these are first calls again);
* loaded: the isolates and tenant sandboxes the host holds after the warm calls (/healthz);
* memory: the proportional set size (PSS, shared pages split between the processes that share
  them) of the host and its sandbox processes, in all and per loaded deployment;
* idle CPU: the same processes over 10 s with nothing called, 30 s after the last call
  (BENCH_SETTLE_SECONDS), in % of a core;
* control plane: `GET /api/workers` (first page) for one tenant, 20 times, p50 ms.
"""

import os
import random
import time

import httpx
from procs import cpu_seconds, pss_mb, tree
from stack import SOURCE, deploy_and_wait, pct, public_worker, ready_copy, running_stack, settings

from tenancy.models import Tenant
from workers.api_keys import issue_key

SHAPES = [(1, 10), (1, 100), (1, 1000), (10, 10), (10, 100), (10, 1000), (100, 100), (100, 1000)]
IDLE_SECONDS = 10
SETTLE_SECONDS = int(os.environ.get("BENCH_SETTLE_SECONDS", "30"))


def timed_calls(client: httpx.Client, deployments) -> list[float]:
    took = []
    for d in deployments:
        t0 = time.perf_counter()
        answer = client.post(f"{d.path_url}/api/invoke/hello", json={})
        took.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, answer.text[:300]
    return took


def shape(tenant_count: int, count: int, artifact) -> dict:
    run = f"g{tenant_count}x{count}"
    tenants = [
        Tenant.objects.create(
            slug=f"{run}-{n}", name=f"{run} {n}", max_invocations_per_minute=10**9
        )
        for n in range(tenant_count)
    ]
    deployments = [
        ready_copy(public_worker(tenants[n % tenant_count], f"{run}-w{n}"), artifact)
        for n in range(count)
    ]
    key = issue_key(tenants[0], "bench", ["read"])[1]
    with running_stack(), httpx.Client(timeout=120) as client:
        host = httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"]
        first = timed_calls(client, deployments)
        rounds = max(2, -(-200 // count))
        order = [d for _ in range(rounds) for d in random.sample(deployments, count)]
        warm = timed_calls(client, order)
        health = client.get(f"{settings.RUNTIME_URL}/healthz").json()
        pids = tree(host)
        memory = pss_mb(pids)
        time.sleep(SETTLE_SECONDS)  # the calls' reports sent, the isolates' collections done
        before = cpu_seconds(*tree(host))
        time.sleep(IDLE_SECONDS)
        idle = 100 * (cpu_seconds(*tree(host)) - before) / IDLE_SECONDS
        api = []
        for _ in range(21):
            t0 = time.perf_counter()
            listed = client.get(
                f"{settings.CONTROL_PLANE_URL}/api/workers",
                headers={"Authorization": f"Bearer {key}"},
            )
            api.append((time.perf_counter() - t0) * 1000)
            assert listed.status_code == 200, listed.text[:300]
    return {
        "first": (pct(first, 50), pct(first, 95)),
        "warm": (pct(warm, 50), pct(warm, 95)),
        "isolates": health["isolates"],
        "sandboxes": health["sandboxes"],
        "memory": memory,
        "processes": len(pids),
        "idle": idle,
        "api": pct(api[1:], 50),
    }


def main():
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="growth", defaults={"name": "Growth"})
        artifact = deploy_and_wait(public_worker(tenant, "built"), SOURCE).artifact
    wanted = os.environ.get("BENCH_SHAPES")
    shapes = [tuple(map(int, s.split("x"))) for s in wanted.split(",")] if wanted else SHAPES
    rows = []
    for tenant_count, count in shapes:
        started = time.monotonic()
        found = shape(tenant_count, count, artifact)
        rows.append((tenant_count, count, found))
        print(
            f"  {tenant_count} x {count} ({time.monotonic() - started:.0f} s): {found}", flush=True
        )
    print("\nGrowth: one runtime host process, default limits; ms per call through HTTP")
    print(
        "| tenants | deployments | first call p50 / p95 | warm call p50 / p95 | loaded isolates "
        "/ sandboxes | host PSS MB | PSS per loaded deployment MB | processes | idle CPU % "
        "of a core | GET /api/workers p50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for tenant_count, count, f in rows:
        per = f["memory"] / max(1, f["isolates"])
        print(
            f"| {tenant_count} | {count} | {f['first'][0]:.1f} / {f['first'][1]:.1f} "
            f"| {f['warm'][0]:.1f} / {f['warm'][1]:.1f} | {f['isolates']} / {f['sandboxes']} "
            f"| {f['memory']:.0f} | {per:.1f} | {f['processes']} | {f['idle']:.1f} "
            f"| {f['api']:.1f} |"
        )


if __name__ == "__main__":
    main()
