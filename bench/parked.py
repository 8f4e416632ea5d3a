"""`make bench`, parked runs: how many runs the platform holds parked (a durable sleep or wait)
at no cost but rows, and whether they resume on time. Writes BENCH_PARKED (1,000,000) runs
sleeping until an hour from now into Postgres, measures their bytes on disk and a sweep that
finds none due; then makes BENCH_DUE (1,000) of them due at once and measures, through the
real stack (beat's sweep, Celery, the runtime), from that moment to each one's first attempt.
"""

import os
import sys
import tempfile
import time
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from stack import SOURCE, deploy_and_wait, pct, public_worker, running_stack

from runs.lifecycle import sweep
from runs.models import Run, RunAttempt
from tenancy.models import Tenant

PARKED = int(os.environ.get("BENCH_PARKED", "1000000"))
DUE = int(os.environ.get("BENCH_DUE", "1000"))


def size(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [table])
        return int(cursor.fetchone()[0])


def main():
    schedule = os.path.join(tempfile.mkdtemp(), "beat-schedule")
    beat = ([sys.executable, "-m", "celery", "-A", "workers_portal", "beat", f"--schedule={schedule}"],
            {"RUN_SWEEP_SECONDS": "1"})  # fmt: skip
    with running_stack(extra=[beat]):
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=10**6)
        worker = public_worker(tenant, "parked")
        deployment = deploy_and_wait(worker, SOURCE)
        Run.objects.filter(worker=worker).delete()
        before = size("deployments_run")
        template = Run.objects.create(
            tenant=tenant, worker=worker, deployment=deployment, function="hello",
            payload='{"name": "parked"}', status="sleeping",
            next_attempt_at=timezone.now() + timedelta(hours=1),
        )  # fmt: skip
        started = time.monotonic()
        with connection.cursor() as cursor:
            # Copies of one parked run, each with its own id (the insert Django would make).
            columns = [
                f.column for f in Run._meta.concrete_fields if f.column not in ("id", "code")
            ]
            names = ", ".join(f'"{c}"' for c in columns)  # the model's own column names
            copy = f"INSERT INTO deployments_run (code, {names}) SELECT gen_random_uuid(), {names} "
            cursor.execute(
                copy + "FROM deployments_run, generate_series(2, %s) WHERE id = %s",  # noqa: S608
                [PARKED, template.pk],
            )
            cursor.execute("ANALYZE deployments_run")
        written = time.monotonic() - started
        per_run = (size("deployments_run") - before) / PARKED
        t = time.monotonic()
        assert sweep()["enqueued"] == 0
        idle_sweep_ms = (time.monotonic() - t) * 1000
        due_at = timezone.now()
        wake = list(Run.objects.filter(worker=worker).values_list("pk", flat=True)[:DUE])
        Run.objects.filter(pk__in=wake).update(next_attempt_at=due_at)
        deadline = time.monotonic() + 600
        while Run.objects.filter(pk__in=wake, status="succeeded").count() < DUE:
            if time.monotonic() > deadline:
                raise SystemExit("the due runs did not all resume within 10 minutes")
            time.sleep(0.5)
        delays = [
            (a.started_at - due_at).total_seconds()
            for a in RunAttempt.objects.filter(run_id__in=wake, number=1)
        ]
        left = Run.objects.filter(worker=worker, status="sleeping").count()
    print(f"\nParked runs: {PARKED:,} sleeping runs in Postgres, then {DUE:,} of them due at once")
    print(
        "| parked | written in s | bytes per parked run (table and indexes) | sweep, none due ms |"
    )
    print("|---|---|---|---|")
    print(f"| {PARKED:,} | {written:.1f} | {per_run:.0f} | {idle_sweep_ms:.1f} |")
    print("\n| due at once | due to first attempt p50 s | p95 s | max s | still parked |")
    print("|---|---|---|---|---|")
    print(
        f"| {DUE:,} | {pct(delays, 50):.1f} | {pct(delays, 95):.1f} | {max(delays):.1f} | {left:,} |"
    )


if __name__ == "__main__":
    main()
