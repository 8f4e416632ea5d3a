"""`make bench`, durable steps: what a step that returns at once costs tenant code (timed in
the isolate: the first step of a run also reads its journal, each step is written to Postgres
before the code goes on), against the same loop without steps, in the same command.

Runs the real stack (uvicorn, Celery, the runtime) started by bin/with-test-services.
"""

import json
import os
import time
from pathlib import Path

from stack import deploy_and_wait, pct, public_worker, running_stack

from runs.lifecycle import accept
from runs.models import Run
from tenancy.models import Tenant

RUNS = int(os.environ.get("BENCH_STEP_RUNS", "10"))
STEPS = int(os.environ.get("BENCH_STEPS", "100"))
WORKER = (Path(__file__).resolve().parent / "kv" / "steps.ts").read_text()


def finished(run: Run) -> list[float]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status == "succeeded":
            return json.loads(run.result)
        assert run.in_flight, (run.status, run.error_message)
        time.sleep(0.05)
    raise SystemExit("a run did not finish within 5 minutes")


def main():
    with running_stack():
        tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
        worker = public_worker(tenant, "steps")
        worker.timeout_seconds = 120
        worker.save()
        deployment = deploy_and_wait(worker, WORKER)
        stepped, plain = [], []
        for _ in range(RUNS):
            stepped += finished(accept(deployment, "steps", json.dumps({"n": STEPS}))[0])
            plain += finished(accept(deployment, "plain", json.dumps({"n": STEPS}))[0])
    print(f"\nDurable steps: {RUNS} runs of {STEPS} steps that return at once, timed in the "
          "isolate (ms per step)")  # fmt: skip
    print("| what | p50 ms | p95 ms | p99 ms | p50 minus the baseline's |")
    print("|---|---|---|---|---|")
    base = pct(plain, 50)
    for label, values in (("the same loop, no step (baseline)", plain), ("ctx.step.run", stepped)):
        p50 = pct(values, 50)
        print(f"| {label} | {p50:.3f} | {pct(values, 95):.3f} | {pct(values, 99):.3f} | "
              f"{p50 - base:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
