"""`make bench`, programs: deploy-to-ready and the first call of a worker with one small npm
package against the same worker without it, with a cold and a warm package cache.

The stack runs with a package cache of its own (a fresh DENO_DIR), so its first build of
the package fetches it from the npm registry (cold); later builds find it there (warm).
Each deployment is new (a comment changes), so every first call is a cold start: the host
loads the code into a fresh isolate.
"""

import os
import sys
import tempfile
import time

os.environ["DENO_DIR"] = tempfile.mkdtemp(prefix="bench-deno-")  # before the stack reads it

import httpx  # noqa: E402
from stack import deploy_and_wait, pct, public_worker, running_stack  # noqa: E402

from tenancy.models import Tenant  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "10"))
PLAIN = """\
export async function wait(payload: { text: string }) {
  return { ms: payload.text.length };
}
"""
WITH_PACKAGE = """\
import ms from "npm:ms@2.1.3";
export async function wait(payload: { text: string }) {
  return { ms: ms(payload.text) };
}
"""
# A larger package (about 115 KB bundled), for the cold and warm cache rows.
WITH_ZOD = """\
import { z } from "npm:zod@3.23.8";
export async function wait(payload: unknown) {
  return { ms: z.object({ text: z.string() }).parse(payload).text.length };
}
"""


def first_call(client, deployment) -> float:
    t0 = time.perf_counter()
    answer = client.post(f"{deployment.path_url}/api/invoke/wait", json={"text": "2 days"})
    assert answer.status_code == 200, answer.text
    return (time.perf_counter() - t0) * 1000


def main():
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        worker = public_worker(tenant, "programs")
        ready = {"plain": [], "package": []}
        cold = {"plain": [], "package": []}
        with httpx.Client(timeout=60) as client:
            deploy_and_wait(worker, PLAIN + "// warm-up\n")  # Deno's own caches, not counted
            t0 = time.perf_counter()
            d = deploy_and_wait(worker, WITH_PACKAGE + "// cold cache\n")
            cold_cache_ms = (time.perf_counter() - t0) * 1000
            first_call(client, d)
            t0 = time.perf_counter()
            deploy_and_wait(worker, WITH_ZOD + "// cold cache\n")
            zod_cold_ms = (time.perf_counter() - t0) * 1000
            zod_warm = []
            for i in range(3):
                t0 = time.perf_counter()
                deploy_and_wait(worker, f"{WITH_ZOD}// warm {i} {time.time()}\n")
                zod_warm.append((time.perf_counter() - t0) * 1000)
            for i in range(ROUNDS):
                for kind, source in (("plain", PLAIN), ("package", WITH_PACKAGE)):
                    t0 = time.perf_counter()
                    d = deploy_and_wait(worker, f"{source}// {kind} {i} {time.time()}\n")
                    ready[kind].append((time.perf_counter() - t0) * 1000)
                    cold[kind].append(first_call(client, d))
    print(f"\nPrograms, local back end, {ROUNDS} deploys of each, {os.cpu_count()} cores")
    print("| measure | p50 ms | p95 ms | p50 vs no package |\n|---|---|---|---|")
    for label, values, base in (
        ("deploy to ready, no package", ready["plain"], None),
        ("deploy to ready, npm:ms, warm package cache", ready["package"], ready["plain"]),
        ("first call (cold start), no package", cold["plain"], None),
        ("first call (cold start), npm:ms", cold["package"], cold["plain"]),
    ):
        ratio = f"{pct(values, 50) / pct(base, 50):.2f}x" if base else ""
        print(f"| {label} | {pct(values, 50):.0f} | {pct(values, 95):.0f} | {ratio} |")
    print(f"| deploy to ready, npm:ms, cold package cache (once) | {cold_cache_ms:.0f} | | |")
    print(f"| deploy to ready, npm:zod, cold package cache (once) | {zod_cold_ms:.0f} | | |")
    print(f"| deploy to ready, npm:zod, warm package cache (3) | {pct(zod_warm, 50):.0f} | | |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
