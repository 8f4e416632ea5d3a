"""`make bench`, durable runs: async calls accepted per second (each stored before its 202)
and completed per second end to end (Celery claims, calls the runtime, records); and the
delay from a cron minute to the start of its run's first attempt.

Runs the real stack (uvicorn, a Celery worker with two processes, beat, the runtime) started
by bin/with-test-services.
"""

import concurrent.futures
import os
import sys
import tempfile
import time
from datetime import UTC, datetime

import httpx
from stack import SOURCE, deploy_and_wait, pct, public_worker, running_stack, settings

from runs.models import Run, Schedule
from runs.schedules import arm
from tenancy.models import Tenant

RUNS = int(os.environ.get("BENCH_RUNS", "1000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
CRON_MINUTES = int(os.environ.get("BENCH_CRON_MINUTES", "2"))
CRON_SCHEDULES = int(os.environ.get("BENCH_CRON_SCHEDULES", "10"))


def main():
    schedule_file = os.path.join(tempfile.mkdtemp(), "beat-schedule")
    beat = ([sys.executable, "-m", "celery", "-A", "workers_portal", "beat",
             f"--schedule={schedule_file}"], {})  # fmt: skip
    with running_stack(extra=[beat]):
        tenant, _ = Tenant.objects.get_or_create(
            slug="bench", defaults={"name": "Bench", "max_invocations_per_minute": 10**6}
        )
        Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=10**6)
        worker = public_worker(tenant, "runs")
        deploy_and_wait(worker, SOURCE)
        url = f"{settings.RUNTIME_URL}/d/{worker.host}/api/invoke/hello?async=1"
        Run.objects.filter(worker=worker).delete()

        def accept(n: int) -> float:
            with httpx.Client(timeout=30) as client:
                started = time.monotonic()
                answer = client.post(url, json={"name": f"n{n}"})
                assert answer.status_code == 202, answer.text
                return (time.monotonic() - started) * 1000

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            latencies = list(pool.map(accept, range(RUNS)))
        accepted_in = time.monotonic() - started
        while Run.objects.filter(worker=worker, status="succeeded").count() < RUNS:
            if time.monotonic() - started > 600:
                raise SystemExit("runs did not finish within 10 minutes")
            time.sleep(0.05)
        completed_in = time.monotonic() - started
        assert not Run.objects.filter(worker=worker).exclude(status="succeeded").exists()

        # Cron: schedules firing every minute; how long after the minute each run starts.
        for n in range(CRON_SCHEDULES):
            s = Schedule(tenant=tenant, worker=worker, function="hello", cron="* * * * *",
                         payload=f'{{"name": "cron{n}"}}')  # fmt: skip
            arm(s)
            s.save()
        first = Schedule.objects.filter(worker=worker).first().next_fire_at
        time.sleep(max(0.0, (first - datetime.now(UTC)).total_seconds()) + 60 * CRON_MINUTES + 5)
        Schedule.objects.filter(worker=worker).update(paused=True)
        time.sleep(3)
        delays = []
        for run in Run.objects.filter(worker=worker, trigger="cron").prefetch_related(
            "attempt_set"
        ):
            attempt = run.attempt_set.first()
            if attempt is None:
                continue
            minute = run.created.replace(second=0, microsecond=0)
            delays.append((attempt.started_at - minute).total_seconds() * 1000)
    print(f"\nDurable runs: {RUNS} async calls from {CLIENTS} clients")
    print("| accepted/s | 202 p50 ms | 202 p95 ms | completed/s (end to end) |")
    print("|---|---|---|---|")
    print(
        f"| {RUNS / accepted_in:.0f} | {pct(latencies, 50):.1f} | {pct(latencies, 95):.1f} "
        f"| {RUNS / completed_in:.0f} |"
    )
    print(f"\nCron minute to the run's first attempt: {len(delays)} firings "
          f"({CRON_SCHEDULES} schedules, {CRON_MINUTES} minutes)")  # fmt: skip
    print("| p50 ms | p95 ms | max ms |\n|---|---|---|")
    if delays:
        print(f"| {pct(delays, 50):.0f} | {pct(delays, 95):.0f} | {max(delays):.0f} |")


if __name__ == "__main__":
    main()
