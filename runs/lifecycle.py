"""Durable runs: a call that is stored before it is acknowledged, attempted by Celery, retried
by the worker's policy, and kept as a dead letter when it keeps failing.

The state machine (every step a compare-and-swap on the row, so two processes that race
record one outcome):

    queued --claim--> running --ok--> succeeded
                         |--failure, retry allowed--> retrying --(delay)--claim--> running
                         |--failure, attempts spent or not retryable--> dead
                         |--the function or deployment is gone--> failed
    running --lease expired (its Celery worker died)--> retrying or dead (the sweep)
    running --its code parks it (ctx.step.sleep, waitForEvent)--> sleeping or waiting
             --(its time, or the event it waits for)--claim--> running

A run is attempted at least once and recorded succeeded at most once: a worker that dies
mid-attempt leaves the run `running`; its lease runs out and the sweep takes it back (the
attempt is marked lost, and counts). A queued or retrying run whose message was lost (Redis
restarted) is enqueued again by the sweep once its time is past.
"""

import json
import random
import time
from datetime import UTC, datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from deployments.models import Deployment
from tenancy.access import acting, acts
from tenancy.limits import effective_limits
from tenancy.quotas import check_room, check_stored_payload
from workers.models import Worker

from .models import Run, RunAttempt, Step

S = Run.Status

# The runtime's error codes, sorted into what the retry policy speaks of.
OUTCOMES = {
    "function_error": "error",
    "isolate_crashed": "error",
    "module_load_failed": "error",
    "result_not_serializable": "error",
    "timeout": "timeout",
    "memory_limit_exceeded": "limit",
    "cpu_limit_exceeded": "limit",
    "result_too_large": "limit",
    "call_depth_exceeded": "limit",
    # Nothing a retry mends: the run fails at once.
    "function_not_found": "permanent",
    "deployment_not_found": "permanent",
    "deployment_not_ready": "permanent",
    "payload_too_large": "permanent",
    "invalid_json": "permanent",
    "unauthorized": "permanent",
    "forbidden": "permanent",
    "not_found": "permanent",
    # Its code parked it (a durable sleep or wait): no failure, no attempt spent.
    "run_parked": "parked",
}
# Failures of the platform, not of the code (a host restarting, the quota, the network):
# always retried, and they do not spend the policy's attempts, up to this many in all.
MAX_PLATFORM_RETRIES = 20


def policy(worker: Worker) -> dict:
    """The worker's retry policy, with the platform's defaults where it sets none."""
    return {
        "max_attempts": worker.retry_attempts or settings.RUN_MAX_ATTEMPTS,
        "backoff_seconds": (
            worker.retry_backoff_seconds
            if worker.retry_backoff_seconds is not None
            else settings.RUN_BACKOFF_SECONDS
        ),
        "max_delay_seconds": worker.retry_max_delay_seconds or settings.RUN_MAX_DELAY_SECONDS,
        "retry_on": list(worker.retry_on if worker.retry_on is not None else settings.RUN_RETRY_ON),
    }


def accept(
    deployment: Deployment,
    function: str,
    payload: str,
    trigger: str = Run.Trigger.ASYNC,
    key_prefix: str = "",
    idempotency_key: str = "",
    schedule=None,
    replay_of: Run | None = None,
    delay: float = 0.0,
) -> tuple[Run, bool]:
    """Store a run and enqueue its first attempt once committed (after `delay` seconds);
    (run, created). With an idempotency key the worker has seen, the run it started then,
    unchanged. QuotaExceeded for a payload over the tenant's stored-payload quota (413) or
    too many runs waiting (429)."""
    worker = deployment.worker
    if idempotency_key:
        found = Run.objects.filter(worker=worker, idempotency_key=idempotency_key).first()
        if found is not None:
            return found, False
    check_stored_payload(worker.tenant, payload)
    check_room(worker.tenant, "max_waiting_runs")
    try:
        with transaction.atomic():
            run = Run.objects.create(
                tenant_id=deployment.tenant_id, worker=worker, deployment=deployment,
                function=function, payload=payload, trigger=trigger, schedule=schedule,
                replay_of=replay_of, idempotency_key=idempotency_key,
                started_by_key=key_prefix, next_attempt_at=timezone.now() + timedelta(seconds=delay),
                **policy(worker),
            )  # fmt: skip
            # A message held by Celery for long is delivered again and again by Redis (its
            # visibility timeout): a run due later than that is sent by the sweep when due.
            if delay <= LONGEST_COUNTDOWN:
                enqueue(run, delay)
    except IntegrityError:
        # The same key in a request that raced this one: its run is the one.
        return Run.objects.get(worker=worker, idempotency_key=idempotency_key), False
    return run, True


PARKED_MARGIN_SECONDS = 2.0
SWEEP_SECONDS = 5.0
LONGEST_COUNTDOWN = 10 * 60  # seconds, within the broker's visibility timeout (15 min)
EXECUTE = "runs.tasks.execute_run"  # by name: the task module imports this one


def send(run_pk: int, delay: float = 0.0) -> None:
    current_app.send_task(EXECUTE, (run_pk,), countdown=delay or None)


def enqueue(run: Run, delay: float = 0.0) -> None:
    """After commit: a worker that takes the message finds the row."""
    transaction.on_commit(lambda: send(run.pk, delay))


def backoff(run: Run, failures: int) -> float:
    """Exponential from the policy's first delay, capped, with full jitter on the top half."""
    base = min(run.max_delay_seconds, run.backoff_seconds * 2 ** max(0, failures - 1))
    return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not a secret


def claim(run_pk: int) -> tuple[Run, RunAttempt] | None:
    """Take a due run for one attempt; None if another process has it or it is not due."""
    now = timezone.now()
    run = Run.objects.select_related("deployment__worker", "deployment__tenant", "tenant").get(
        pk=run_pk
    )
    lease = now + timedelta(
        seconds=effective_limits(run.worker)["timeout_seconds"] + settings.RUN_LEASE_MARGIN_SECONDS
    )
    with transaction.atomic():
        taken = run.transition(
            [S.QUEUED, S.RETRYING, *Run.PARKED], S.RUNNING, when={"next_attempt_at__lte": now},
            attempts=F("attempts") + 1, lease_until=lease, started_at=run.started_at or now,
        )  # fmt: skip
        if not taken:
            return None
        attempt = RunAttempt.objects.create(run=run, number=run.attempts, deployment=run.deployment)
    return run, attempt


def resend_if_early(run_pk: int) -> None:
    """A message that came before its run was due (a timer that fired a hair early, a clock
    step) is sent again for the time left, so that the run does not wait for the sweep. A run
    another process holds, or one that is finished, is left alone."""
    run = Run.objects.filter(pk=run_pk).values("status", "next_attempt_at").first()
    if run is None or run["status"] not in (S.QUEUED, S.RETRYING, *Run.PARKED):
        return
    left = (run["next_attempt_at"] - timezone.now()).total_seconds()
    # A parked run waiting for an event was sent a message for its timeout only; any other
    # message for it is not early, and a long park is the sweep's (LONGEST_COUNTDOWN).
    if 0 < left <= EARLY_SECONDS:
        send(run_pk, left)


EARLY_SECONDS = 5.0


def outcome_of(status: int, body: dict) -> tuple[str, str, str]:
    """(outcome, error code, message) of one call's answer."""
    if status == 200:
        return "ok", "", ""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or f"http_{status}")
    message = str(error.get("message") or "")
    return OUTCOMES.get(code, "platform"), code, message


def execute(run_pk: int) -> str | None:
    """One attempt of a run, and what follows from it. Safe to call twice: only a caller
    that claims the run attempts it."""
    run = Run.objects.select_related("tenant").filter(pk=run_pk).first()
    if run is None or not run.in_flight:
        return None
    if not acts(run.tenant):
        # A suspended tenant's runs wait; the sweep looks at them again.
        return "waiting"
    claimed = claim(run_pk)
    if claimed is None:
        resend_if_early(run_pk)
        return None
    run, attempt = claimed
    deployment = run.deployment
    if deployment.status != Deployment.Status.READY:
        answer_status, body = 404, {"error": {"code": "deployment_not_ready", "message": (
            f"Deployment {deployment.short_id} is {deployment.status}; it runs nothing.")}}  # fmt: skip
    else:
        answer = deployment.runs_on.invoke(
            deployment, run.function, run.payload, trigger=run.trigger_header, run=str(run.code)
        )
        answer_status, body = answer.status, answer.body
    return record(run, attempt, answer_status, body if isinstance(body, dict) else {})


def record(run: Run, attempt: RunAttempt, status: int, body: dict) -> str:
    outcome, code, message = outcome_of(status, body)
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    now = timezone.now()
    logs = body.get("logs") if isinstance(body.get("logs"), list) else []
    RunAttempt.objects.filter(pk=attempt.pk).update(
        finished_at=now, outcome=outcome, status_code=status, error_code=code,
        error_message=message[:5000], error_stack=str(error.get("stack") or "")[:20000],
        duration_ms=body.get("durationMs"),
        request_id=str(body.get("requestId") or "")[:64], logs=logs[:1000],
    )  # fmt: skip
    this_attempt = {"attempts": attempt.number}  # a later attempt's outcome is not ours
    if outcome == "parked":
        return park(run, error.get("parked"), this_attempt, now)
    if outcome == "ok":
        result = json.dumps(body.get("result"))
        run.transition(S.RUNNING, S.SUCCEEDED, when=this_attempt, result=result, error_code="",
                       error_message="", finished_at=now)  # fmt: skip
        return S.SUCCEEDED
    # A step that threw in this call: the failure is named by it (and a dead letter says
    # which step kept failing).
    failed = run.steps.filter(
        status=Step.Status.FAILED, request_id=str(body.get("requestId") or "-")
    ).last()
    if failed is not None:
        message = f'Step "{failed.name}" failed: {message}'
    if outcome == "permanent":
        run.transition(S.RUNNING, S.FAILED, when=this_attempt, error_code=code,
                       error_message=message, finished_at=now)  # fmt: skip
        return S.FAILED
    return retry_or_bury(run, attempt.number, outcome, code, message, now)


def park(run: Run, parked: object, this_attempt: dict, now) -> str:
    """Its code parked it until a time (a sleep, a wait's timeout), or an event."""
    parked = parked if isinstance(parked, dict) else {}
    until = now
    if isinstance(parked.get("until"), int | float):
        until = max(now, datetime.fromtimestamp(parked["until"] / 1000, tz=UTC))
    status = S.WAITING if parked.get("kind") == "wait" else S.SLEEPING
    with transaction.atomic():
        if not run.transition(S.RUNNING, status, when=this_attempt, lease_until=None,
                              next_attempt_at=until):  # fmt: skip
            return status
        # An event sent while it ran (before it parked) wakes it at once.
        waits = run.steps.filter(kind=Step.Kind.WAIT, status=Step.Status.PARKED).values_list(
            "event", flat=True
        )
        if status == S.WAITING and run.events.filter(taken_by="", name__in=list(waits)).exists():
            run.transition(S.WAITING, S.QUEUED, next_attempt_at=now)
            until = now
        delay = (until - now).total_seconds()
        if delay <= LONGEST_COUNTDOWN:
            enqueue(run, delay)
    return status


def retry_or_bury(run: Run, number: int, outcome: str, code: str, message: str, now) -> str:
    """After a failed attempt: again later, or a dead letter."""
    attempts = [o for o in run.attempt_set.values_list("outcome", flat=True) if o != "parked"]
    platform = sum(1 for o in attempts if o in ("platform", "lost"))
    counted = len(attempts) - platform
    if outcome in ("platform", "lost"):
        again = platform < MAX_PLATFORM_RETRIES
    else:
        again = outcome in run.retry_on and counted < run.max_attempts
    this_attempt = {"attempts": number}
    if not again:
        run.transition(S.RUNNING, S.DEAD, when=this_attempt, error_code=code,
                       error_message=message, finished_at=now)  # fmt: skip
        return S.DEAD
    delay = backoff(run, max(1, counted if outcome not in ("platform", "lost") else platform))
    with transaction.atomic():
        moved = run.transition(
            S.RUNNING, S.RETRYING, when=this_attempt, error_code=code, error_message=message,
            lease_until=None, next_attempt_at=now + timedelta(seconds=delay),
        )  # fmt: skip
        if moved:
            enqueue(run, delay)
    return S.RETRYING


def sweep() -> dict[str, int]:
    """Take back runs whose Celery worker died mid-attempt, and enqueue again runs whose
    message was lost; both once their time is well past."""
    now = timezone.now()
    taken_back = 0
    for run in Run.objects.filter(status=S.RUNNING, lease_until__lt=now).select_related("tenant"):
        attempt = run.attempt_set.filter(number=run.attempts).first()
        if attempt is not None:
            RunAttempt.objects.filter(pk=attempt.pk, finished_at=None).update(
                finished_at=now, outcome="lost",
                error_message="The process running this attempt stopped before it reported.",
            )  # fmt: skip
        retry_or_bury(run, run.attempts, "lost", "attempt_lost",
                      "The process running an attempt stopped before it reported.", now)  # fmt: skip
        taken_back += 1
    # A queued or retrying run had its message sent: it is lost only well past its time. A
    # parked run due later than Celery holds messages had none: it is sent once due (and a
    # short park's message, if Redis lost it, a moment after).
    late = now - timedelta(seconds=settings.RUN_LEASE_MARGIN_SECONDS)
    woken = now - timedelta(seconds=PARKED_MARGIN_SECONDS)
    due = Q(status__in=[S.QUEUED, S.RETRYING], next_attempt_at__lt=late) | Q(
        status__in=Run.PARKED, next_attempt_at__lt=woken
    )
    enqueued, after = 0, 0
    stop = time.monotonic() + SWEEP_SECONDS
    while True:  # a thousand at a time, for a few seconds at most (the next sweep goes on)
        batch = list(
            acting(Run.objects.filter(due, pk__gt=after)).order_by("pk")
            .values_list("pk", flat=True)[:1000]
        )  # fmt: skip
        for pk in batch:
            send(pk)
        enqueued += len(batch)
        if len(batch) < 1000 or time.monotonic() > stop:
            break
        after = batch[-1]
    return {"taken_back": taken_back, "enqueued": enqueued}


# --- dead letters ------------------------------------------------------------------------


def replay(run: Run, on_production: bool, by: str, from_step: str = "") -> Run:
    """A new run of a dead (or failed) one's function and payload, on the worker's current
    production or on the deployment it first ran on. With `from_step`, the new run starts
    with the steps the old one finished before that step: they are not run again; that step
    and the ones after it are."""
    target = run.deployment
    if on_production:
        target = Worker.objects.select_related("production").get(pk=run.worker_id).production
        if target is None:
            raise ValueError("The worker serves nothing in production now.")
    kept: list[Step] = []
    if from_step:
        journal = list(run.steps.all())
        names = [s.name for s in journal]
        if from_step not in names:
            raise ValueError(f'This run has no step named "{from_step}".')
        kept = [s for s in journal[: names.index(from_step)] if s.status == Step.Status.DONE]
    with transaction.atomic():  # its first attempt is sent once the kept steps are there
        new, _ = accept(target, run.function, run.payload, Run.Trigger.REPLAY, replay_of=run)
        Step.objects.bulk_create(
            Step(run=new, name=s.name, kind=s.kind, status=s.status, tries=s.tries,
                 started_at=s.started_at, finished_at=s.finished_at, result=s.result,
                 until=s.until, event=s.event, match=s.match, request_id=s.request_id)
            for s in kept
        )  # fmt: skip
    # Off the dead letters: its replay carries on (and is a dead letter itself if it fails).
    discard(run, f"replayed by {by}")
    return new


def cancel(run: Run, by: str) -> bool:
    """A run that is not being attempted right now (queued, retrying, parked) ends failed,
    saying who canceled it; False for one that is running or has ended."""
    return run.transition(
        [S.QUEUED, S.RETRYING, *Run.PARKED], S.FAILED, error_code="canceled",
        error_message=f"Canceled by {by}.", lease_until=None,
    )  # fmt: skip


def discard(run: Run, by: str) -> bool:
    return bool(
        Run.objects.filter(pk=run.pk, status__in=[S.DEAD, S.FAILED], discarded_at=None).update(
            discarded_at=timezone.now(), discarded_by=by
        )
    )


def dead_letters(queryset):
    return queryset.filter(status=S.DEAD, discarded_at=None)
