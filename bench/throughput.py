"""`make bench`, third part: warm throughput under load, against a bare Deno.serve (the
baseline) and workerd running the same function, and memory per idle loaded deployment.

The load generator is wrk (one thread, 32 connections, 10 s per target, after a 3 s warm-up)
on the same 2-core machine as the servers: every target shares the CPU with it alike.
"""

import os
import re
import time
from pathlib import Path

import httpx
from load import CONNECTIONS, DURATION, KINDS, LOAD, wrk, wrk_with_cpu
from stack import (
    ROOT,
    SOURCE,
    deploy_and_wait,
    public_worker,
    ready_copy,
    running_stack,
    settings,
    wait_http,
)

from deployments.deno import deno_bin, deno_env
from deployments.models import Deployment
from tenancy.models import Tenant

WORKERD = ROOT / "bench" / "node_modules" / ".bin" / "workerd"
IDLE_DEPLOYMENTS = int(os.environ.get("BENCH_IDLE_DEPLOYMENTS", "40"))
TENANTS = int(os.environ.get("BENCH_TENANTS", "10"))


def rss_kb(pid: int) -> int:
    """Resident memory of the host and of the tenants' sandbox processes it started."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if int(entry.name) != pid and parent != pid:
                continue
            status = (entry / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return total


def call_each(deployments) -> None:
    with httpx.Client(timeout=30) as client:
        for d in deployments:
            r = client.post(f"{d.path_url}/api/invoke/hello", json={"name": "x"})
            assert r.status_code == 200, r.text


def main():
    workerd_dir = ROOT / "var" / "bench-workerd"
    workerd_dir.mkdir(parents=True, exist_ok=True)
    (workerd_dir / "worker.js").write_text((ROOT / "bench/workerd/worker.js").read_text())
    (workerd_dir / "config.capnp").write_text((ROOT / "bench/workerd/config.capnp").read_text())
    extra = [
        (
            [deno_bin(), "run", "--allow-net", str(ROOT / "bench" / "baseline.ts"), "8790"],
            deno_env(),
        ),
        ([str(WORKERD), "serve", str(workerd_dir / "config.capnp")], {}),
    ]
    with running_stack(extra=extra):
        wait_http("http://127.0.0.1:8790/")
        wait_http("http://127.0.0.1:8791/")
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        # A load test is far above any sensible per-tenant rate quota.
        Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=10**9)
        worker = public_worker(tenant, "hello")
        deployment = deploy_and_wait(worker, f"{SOURCE}\n// {time.time()}\n")
        targets = {
            "bare Deno.serve (baseline)": "http://127.0.0.1:8790/",
            "platform deployment URL": f"{deployment.path_url}/api/invoke/hello",
            "workerd": "http://127.0.0.1:8791/",
        }
        only = os.environ.get("BENCH_ONLY")  # e.g. "platform": measure one target alone
        results, cpu = {}, {}
        for name, url in targets.items():
            if only and only not in name and "baseline" not in name:
                continue
            wrk(url, "3")  # warm-up: JIT, connections, the isolate
            if "workerd" in name:
                results[name] = wrk(url)
            else:
                results[name], cpu[name] = wrk_with_cpu(url)
        base = results["bare Deno.serve (baseline)"]
        processes = os.environ.get("RUNTIME_PROCESSES", "?")
        print(f"wrk -t1 -c{CONNECTIONS} -d{DURATION}s, runtime host processes: {processes}\n")
        print("| server | req/s | p50 ms | p99 ms | req/s vs baseline | p50 vs baseline |")
        print("|---|---|---|---|---|---|")
        for name, r in results.items():
            print(
                f"| {name} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
                f"| {r['rps'] / base['rps']:.0%} | {r['p50'] / base['p50']:.2f}x |"
            )

        if "platform deployment URL" in results:
            # Where the two cores went: the platform's own processes per call against the bare
            # server's, and what storing every call's record costs on this machine.
            print(
                f"\nCPU while wrk ran, cores used (of {os.cpu_count()}) and us of CPU per call:\n"
            )
            print("| run | process | cores | us per call |")
            print("|---|---|---|---|")
            for target, used in cpu.items():
                rps = results[target]["rps"]
                for kind in [*(name for name, _ in KINDS), LOAD]:
                    if used.get(kind, 0.0) >= 0.01:
                        print(
                            f"| {target} | {kind} | {used[kind]:.2f} | {used[kind] / rps * 1e6:.0f} |"
                        )

        # Memory per idle loaded deployment: load N more deployments (the same code, stored
        # once) into the one host process, then compare its resident memory. With several
        # host processes the calls spread over them and one process's memory says nothing.
        if processes != "1" or IDLE_DEPLOYMENTS < 10:
            return
        pid = httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"]
        artifact = Deployment.objects.get(pk=deployment.pk).artifact
        idle = [
            ready_copy(public_worker(tenant, f"idle{i}"), artifact) for i in range(IDLE_DEPLOYMENTS)
        ]
        time.sleep(3)
        before = rss_kb(pid)
        call_each(idle)
        time.sleep(3)  # spares booted again, garbage collected
        after = rss_kb(pid)
        per = (after - before) / 1024 / IDLE_DEPLOYMENTS
        print(
            f"\nmemory: host and sandboxes RSS {before / 1024:.0f} MB -> {after / 1024:.0f} MB "
            f"after loading {IDLE_DEPLOYMENTS} deployments of one tenant: {per:.1f} MB per idle "
            "loaded deployment"
        )
        # A tenant's first call starts its sandbox process: what one costs, idle.
        others = []
        for i in range(TENANTS):
            other, _ = Tenant.objects.get_or_create(slug=f"bench{i}", defaults={"name": f"B{i}"})
            others.append(ready_copy(public_worker(other, "hello"), artifact))
        time.sleep(3)
        before = rss_kb(pid)
        call_each(others)
        time.sleep(3)
        after = rss_kb(pid)
        print(
            f"memory: {before / 1024:.0f} MB -> {after / 1024:.0f} MB after one call each of "
            f"{TENANTS} more tenants: {(after - before) / 1024 / TENANTS:.1f} MB per tenant "
            "(its sandbox process with one deployment)"
        )


if __name__ == "__main__":
    main()
