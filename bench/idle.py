"""`make bench`, idle and bursts: the CPU a runtime host spends on 200 loaded deployments
nobody calls, and a burst of first calls to 20 deployments never called before.

One host process (RUNTIME_PROCESSES=1), so its CPU is one process's: read from
/proc/<pid>/stat over 30 s after the deployments are loaded and left alone.
"""

import os
import time

import httpx
from procs import cpu_seconds
from stack import SOURCE, deploy_and_wait, pct, public_worker, ready_copy, running_stack, settings

from tenancy.models import Tenant

LOADED = int(os.environ.get("BENCH_LOADED", "200"))
BURST = int(os.environ.get("BENCH_BURST", "20"))
QUIET_SECONDS = 30
SETTLE_SECONDS = int(os.environ.get("BENCH_SETTLE_SECONDS", "60"))


def thread_cpu(pid: int) -> dict[str, tuple[str, float]]:
    """Thread id -> (name, CPU seconds) of every thread of the process."""
    found = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except FileNotFoundError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        found[tid] = (name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return found


def main():
    os.environ["RUNTIME_PROCESSES"] = "1"
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=10**9)
        first = deploy_and_wait(public_worker(tenant, "idle"), SOURCE)
        pid = httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"]
        with httpx.Client(timeout=60) as client:
            # A burst: deployments never called, their first calls back to back.
            burst = [
                ready_copy(public_worker(tenant, f"burst{i}"), first.artifact) for i in range(BURST)
            ]
            time.sleep(3)  # announced, spares booted
            took = []
            for d in burst:
                t0 = time.perf_counter()
                assert client.post(f"{d.path_url}/api/invoke/hello", json={}).status_code == 200
                took.append((time.perf_counter() - t0) * 1000)
            # Idle: load LOADED deployments (one call each), then leave them alone.
            loaded = [
                ready_copy(public_worker(tenant, f"loaded{i}"), first.artifact)
                for i in range(LOADED)
            ]
            for d in loaded:
                assert client.post(f"{d.path_url}/api/invoke/hello", json={}).status_code == 200
            isolates = client.get(f"{settings.RUNTIME_URL}/healthz").json()["isolates"]
        time.sleep(SETTLE_SECONDS)  # reports shipped; the isolates' own after-call collections done
        before = cpu_seconds(pid)
        threads_before = thread_cpu(pid)
        time.sleep(QUIET_SECONDS)
        used = cpu_seconds(pid) - before
        threads = thread_cpu(pid)
        busiest = sorted(
            ((threads[t][1] - threads_before.get(t, (None, 0))[1], threads[t][0]) for t in threads),
            reverse=True,
        )[:5]
    print(f"\nIdle and bursts, one host process, {os.cpu_count()} cores")
    print("| measure | value |\n|---|---|")
    print(
        f"| burst of {BURST} first calls, p50 / p95 / max ms | {pct(took, 50):.0f} / {pct(took, 95):.0f} / {max(took):.0f} |"
    )
    print(
        f"| {isolates} loaded idle deployments: host CPU over {QUIET_SECONDS} s | {100 * used / QUIET_SECONDS:.2f}% of a core |"
    )
    print(f"\nburst, in order (ms): {', '.join(f'{v:.0f}' for v in took)}")
    print("busiest threads while idle (CPU s over the quiet time, name):", busiest)


if __name__ == "__main__":
    main()
