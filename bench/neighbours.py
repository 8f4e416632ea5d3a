"""`make bench`, noisy neighbours: a quiet tenant's latency while another tenant runs the
abusive programs that once escaped the isolates' limits, against the same tenant on a quiet
machine, in the same run.

Tenant B calls a small function sequentially (one client) for BENCH_SECONDS, first alone,
then while tenant A, from four client threads, calls in a loop: a backtracking regular
expression (uninterruptible, 300 ms CPU limit), a pbkdf2Sync, a function that starts a
node:worker_threads worker that spins on, and one that holds Blobs; each client comes back
when its answer says Retry-After (a sandbox stopped again and again waits for its next).
Prints B's p50 and p95 in
both phases, their ratio, and what happened to A's calls.
"""

import json
import os
import subprocess
import sys
import time
from collections import Counter

import httpx
from stack import ROOT, SOURCE, deploy_and_wait, pct, public_worker, running_stack

from tenancy.models import Tenant

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ATTACK = """
import signal, sys, time, httpx
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
target, body = sys.argv[1], sys.argv[2]
with httpx.Client(timeout=60) as client:
    while True:
        answer = client.post(target, content=body, headers={"content-type": "application/json"})
        code = answer.json().get("error", {}).get("code", "ok")
        print(target.rsplit("/", 1)[1] + ":" + code, flush=True)
        # An attacker that wants its work to run comes back when told to. (One that does not
        # floods the host with refusals: that is the invocations-per-minute quota's job, and
        # on this one machine its client processes would take the measured client's CPU.)
        time.sleep(float(answer.headers.get("retry-after", 0)))
"""


def program(name: str) -> str:
    return (ROOT / "tests" / "programs" / "hostile" / f"{name}.ts").read_text()


def tenant(slug: str) -> Tenant:
    found, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug})
    Tenant.objects.filter(pk=found.pk).update(max_invocations_per_minute=10**9)
    return found


def quiet_calls(client: httpx.Client, url: str, seconds: float) -> list[float]:
    times = []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        answer = client.post(url, json={"name": "b"})
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, answer.text
    return times


def main():
    os.environ["RUNTIME_PROCESSES"] = "1"
    with running_stack():
        quiet = deploy_and_wait(public_worker(tenant("quiet"), "hello"), SOURCE)
        attacker = tenant("noisy")
        cpu = public_worker(attacker, "cpu")
        cpu.cpu_ms = 300
        cpu.save()
        cpu_deployment = deploy_and_wait(cpu, program("cpu"))
        threads_deployment = deploy_and_wait(public_worker(attacker, "threads"), program("workers"))
        memory_deployment = deploy_and_wait(public_worker(attacker, "memory"), program("memory"))
        url = f"{quiet.path_url}/api/invoke/hello"
        attacks = [
            (f"{cpu_deployment.path_url}/api/invoke/regex", {"n": 40}),
            (f"{cpu_deployment.path_url}/api/invoke/derive", {"iterations": 50_000_000}),
            (f"{threads_deployment.path_url}/api/invoke/nodeWorker", {}),
            (f"{memory_deployment.path_url}/api/invoke/blobs", {"mb": 64}),
        ]
        with httpx.Client(timeout=60) as client:
            quiet_calls(client, url, 2)  # warm
            alone = quiet_calls(client, url, SECONDS)
            # The attacks come from processes of their own: threads here would share this
            # client's interpreter lock and slow the measured calls themselves.
            attackers = [
                subprocess.Popen(
                    [sys.executable, "-c", ATTACK, target, json.dumps(body)],
                    stdout=subprocess.PIPE,
                    text=True,
                )  # fmt: skip
                for target, body in attacks
            ]
            time.sleep(1)
            noisy = quiet_calls(client, url, SECONDS)
            outcomes: Counter = Counter()
            for attacker_proc in attackers:
                attacker_proc.terminate()
                for line in attacker_proc.communicate()[0].split():
                    outcomes[line] += 1
        print(f"tenant B, sequential calls for {SECONDS:.0f} s each phase\n")
        print("| phase | calls | p50 ms | p95 ms |")
        print("|---|---|---|---|")
        for name, times in (("alone", alone), ("beside tenant A's attacks", noisy)):
            print(f"| {name} | {len(times)} | {pct(times, 50):.2f} | {pct(times, 95):.2f} |")
        print(
            f"\np95 beside the attacks / p95 alone: {pct(noisy, 95) / pct(alone, 95):.2f}x; "
            f"p50: {pct(noisy, 50) / pct(alone, 50):.2f}x"
        )
        print("\ntenant A's calls: " + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items())))


if __name__ == "__main__":
    main()
