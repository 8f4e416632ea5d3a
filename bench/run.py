"""`make bench`: deploy-to-ready, cold and warm invocation latency, against a bare Deno.serve.

Runs the real stack (Postgres, Redis, a Celery worker, the web app, the runtime) started
by bin/with-test-services, and prints a table to paste into docs/benchmarks.md.
"""

import os
import subprocess
import time

import httpx
from stack import (
    ROOT,
    SOURCE,
    deploy_and_wait,
    pct,
    public_worker,
    ready_copy,
    running_stack,
    settings,
    wait_http,
)

from deployments.deno import deno_bin, deno_env
from tenancy.models import Tenant

DEPLOYS = int(os.environ.get("BENCH_DEPLOYS", "10"))
CALLS = int(os.environ.get("BENCH_CALLS", "500"))
BURST = int(os.environ.get("BENCH_BURST", "20"))
# Seconds between the stack's start and the first deploy: 0 is a deploy the moment it is up;
# a few seconds, one after the build processes have started (and warmed what they start).
SETTLE = float(os.environ.get("BENCH_SETTLE_SECONDS", "0"))


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
    baseline = (
        [deno_bin(), "run", "--allow-net", str(ROOT / "bench" / "baseline.ts"), "8790"],
        deno_env(),
    )
    with running_stack(extra=[baseline]):
        wait_http("http://127.0.0.1:8790/")
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        worker = public_worker(tenant, "hello")
        time.sleep(SETTLE)

        ready_ms, cold_ms, burst_ms, deployments = [], [], [], []
        with httpx.Client(timeout=30) as client:
            # Deploy, then call the new deployment at once (its first call), as a user would.
            for i in range(DEPLOYS + 1):
                source = f"{SOURCE}\n// deploy {i} {time.time()}\n"  # a new source every time
                t0 = time.perf_counter()
                d = deploy_and_wait(worker, source)
                first = timed_calls(client, f"{d.path_url}/api/invoke/hello", 1)
                took = (time.perf_counter() - t0) * 1000 - first[0]
                if i:  # the first deploy warms Deno's caches and the worker; not counted
                    ready_ms.append(took)
                    cold_ms += first
                else:
                    first_deploy_ms = took
                deployments.append(d)
            # A burst: BURST more deployments (the same code, stored once), never called, then
            # their first calls back to back: more cold starts at once than isolates kept ready.
            burst = [ready_copy(worker, deployments[-1].artifact) for _ in range(BURST)]
            time.sleep(2)
            for d in burst:
                burst_ms += timed_calls(client, f"{d.path_url}/api/invoke/hello", 1)
            # The same files again, as a redeploy or another worker would: the build cache.
            cached_ms = []
            for i in range(5):
                again = public_worker(tenant, f"again{i}")
                t0 = time.perf_counter()
                deploy_and_wait(again, deployments[-1].source)
                cached_ms.append((time.perf_counter() - t0) * 1000)
            url = f"{deployments[-1].path_url}/api/invoke/hello"
            timed_calls(client, url, 50)  # warm up
            warm = timed_calls(client, url, CALLS)
            timed_calls(client, "http://127.0.0.1:8790/", 50)
            base = timed_calls(client, "http://127.0.0.1:8790/", CALLS)

        version = subprocess.run(
            [deno_bin(), "--version"], capture_output=True, text=True
        ).stdout.split()[1]
        print(
            f"deno {version}, {os.cpu_count()} cores, database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[1]}"
        )
        print("\n| measure | n | p50 ms | p95 ms | p50 vs bare Deno.serve |")
        print("|---|---|---|---|---|")
        b = row("bare Deno.serve, warm call (baseline)", base)
        row("platform, warm call", warm, b)
        row(
            "platform, cold call (first call of a new deployment, right after its deploy)",
            cold_ms,
            b,
        )
        row(
            f"platform, cold calls in a burst ({BURST} never-called deployments, back to back)",
            burst_ms,
            b,
        )
        row("deploy: submit to ready (local back end)", ready_ms)
        row("deploy: submit to ready, files built before (build cache)", cached_ms)
        print(
            f"\nthe first deploy, {SETTLE:g} s after the stack started (ms): {first_deploy_ms:.0f}"
        )
        print(f"cold calls, in order (ms): {', '.join(f'{v:.1f}' for v in cold_ms)}")
        print(f"burst, in order (ms): {', '.join(f'{v:.1f}' for v in burst_ms)}")


if __name__ == "__main__":
    main()
