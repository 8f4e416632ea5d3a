"""Durable runs in the JSON API: a run's status (the URL an async call answers with) with its
durable steps, runs and dead letters per worker and per tenant, replay and discard, events
sent to runs that wait for them, retry policies and schedules."""

import json
from uuid import UUID

from django.http import HttpResponse
from ninja import Query, Router, Status

from runs import steps
from runs.lifecycle import cancel, dead_letters, discard, policy, replay
from runs.models import Run, Schedule, Step
from runs.schedules import ScheduleError, arm, check, check_quota, next_firings
from tenancy.access import Action, can
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded

from .errors import ApiError, not_found, require
from .schemas import (
    ErrorOut,
    ReplayIn,
    ReplayManyIn,
    RetryPolicyIn,
    RetryPolicyOut,
    RunEventIn,
    RunEventOut,
    RunEventsIn,
    RunList,
    RunOut,
    RunStatus,
    ScheduleChangeIn,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
)
from .workers import tenant_for, worker_for

router = Router(tags=["runs"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
CHANGE_ERRORS = {frozenset({400, 401, 403, 404, 409}): ErrorOut}
QUERY_ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}  # a query of the wrong type
PAGE = 50


def loads(text: str):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def run_json(run: Run, attempts: bool = True) -> dict:
    out = {
        "id": run.code,
        "worker": run.worker.code,
        "workerName": run.worker.name,
        "deployment": run.deployment.code,
        "function": run.function,
        "trigger": run.trigger,
        "status": run.status,
        "result": loads(run.result) if run.status == Run.Status.SUCCEEDED else None,
        "error": {"code": run.error_code, "message": run.error_message} if run.error_code else None,
        "payload": loads(run.payload),
        "attemptCount": run.attempts,
        "maxAttempts": run.max_attempts,
        "nextAttemptAt": run.next_attempt_at
        if run.status in (Run.Status.RETRYING, *Run.PARKED)
        else None,
        "idempotencyKey": run.idempotency_key or None,
        "replayOf": run.replay_of.code if run.replay_of_id else None,
        "schedule": run.schedule.code if run.schedule_id else None,
        "discarded": run.discarded_at is not None,
        "createdAt": run.created,
        "startedAt": run.started_at,
        "finishedAt": run.finished_at,
        "attempts": [],
        "steps": [],
    }
    if attempts:
        made = list(run.attempt_set.select_related("deployment"))
        out["attempts"] = [
            {
                "number": a.number,
                "deployment": a.deployment.code,
                "startedAt": a.started_at,
                "finishedAt": a.finished_at,
                "outcome": a.outcome or "running",
                "statusCode": a.status_code,
                "error": {
                    "code": a.error_code,
                    "message": a.error_message,
                    **({"stack": a.error_stack} if a.error_stack else {}),
                }
                if a.error_code
                else None,
                "durationMs": a.duration_ms,
                "requestId": a.request_id or None,
                "logs": a.logs,
            }  # fmt: skip
            for a in made
        ]
        out["steps"] = [step_json(s) for s in steps.with_lines(list(run.steps.all()), made)]
    return out


def step_json(s: Step) -> dict:
    return {
        "name": s.name, "kind": s.kind, "status": s.status, "tries": s.tries,
        "startedAt": s.started_at, "finishedAt": s.finished_at,
        "result": loads(s.result) if s.status == Step.Status.DONE else None,
        "error": s.error_message or None, "until": s.until, "event": s.event or None,
        "match": s.match, "requestId": s.request_id or None, "logs": s.printed,
    }  # fmt: skip


RUNS = Run.objects.select_related("worker", "deployment", "replay_of", "schedule", "tenant")


@router.get(
    "/runs/{uuid:id}",
    response={200: RunOut, **ERRORS},
    auth=None,
    summary="A run: its status, result or error, and every attempt",
    description="Readable with an API key with the read scope, with the key that started "
    "it, or, for a run of a public worker started without a key, by its id alone.",
)
def get_run(request, id: UUID):
    run = RUNS.filter(code=id).first()
    principal = request.principal
    allowed = run is not None and (
        can(principal, Action.READ, run)
        or (principal.key is not None and principal.key.prefix == run.started_by_key)
        or (not run.started_by_key and run.worker.public)
    )
    if not allowed:
        raise not_found("run")
    return run_json(run)


def listed(queryset, status: str | None, function: str | None, before: int | None) -> dict:
    """Newest first, a page at a time: `before` is the `next` of the page before."""
    if status:
        queryset = queryset.filter(status=status)
    if function:
        queryset = queryset.filter(function=function)
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    page = list(queryset.order_by("-id")[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    return {
        "runs": [run_json(r, attempts=False) for r in page],
        "next": page[-1].pk if more else None,
    }


@router.get(
    "/workers/{uuid:id}/runs",
    response={200: RunList, **QUERY_ERRORS},
    summary="A worker's runs, newest first (`before` pages on)",
)
def worker_runs(
    request,
    id: UUID,
    status: RunStatus | None = None,
    function: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
    before: int | None = None,
):
    worker = worker_for(request, id, Action.READ)
    return listed(RUNS.filter(worker=worker), status, function, before)


@router.get(
    "/runs",
    response={200: RunList, **QUERY_ERRORS},
    summary="The tenant's runs, newest first (`before` pages on)",
)
def tenant_runs(
    request,
    status: RunStatus | None = None,
    function: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
    before: int | None = None,
    tenant: str | None = None,
):
    found = tenant_for(request, tenant, Action.READ)
    return listed(RUNS.filter(tenant=found), status, function, before)


@router.get(
    "/workers/{uuid:id}/dead-letters",
    response={200: RunList, **QUERY_ERRORS},
    summary="A worker's dead letters: runs that kept failing, not discarded",
)
def worker_dead_letters(request, id: UUID, before: int | None = None):
    worker = worker_for(request, id, Action.READ)
    return listed(dead_letters(RUNS.filter(worker=worker)), None, None, before)


@router.get(
    "/dead-letters",
    response={200: RunList, **QUERY_ERRORS},
    summary="The tenant's dead letters",
)
def tenant_dead_letters(request, before: int | None = None, tenant: str | None = None):
    found = tenant_for(request, tenant, Action.READ)
    return listed(dead_letters(RUNS.filter(tenant=found)), None, None, before)


def run_for(request, id: UUID, action: Action) -> Run:
    run = RUNS.visible_to(request.principal).filter(code=id).first()
    if run is None:
        raise not_found("run")
    require(request, action, run)
    return run


@router.post(
    "/runs/{uuid:id}/replay",
    response={202: RunOut, **CHANGE_ERRORS},
    summary="Replay a dead or failed run: a new run with its function and payload",
)
def replay_run(request, id: UUID, body: ReplayIn):
    run = run_for(request, id, Action.INVOKE)
    if run.status not in (Run.Status.DEAD, Run.Status.FAILED):
        raise ApiError(
            409, "not_dead", f"This run is {run.status}; only dead or failed runs replay."
        )
    try:
        new = replay(run, body.onProduction, request.principal.label, body.fromStep or "")
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    record(request, run.tenant, "run.replay", run.worker.name, run=str(run.code), new=str(new.code))
    return Status(202, run_json(new))


@router.post(
    "/runs/{uuid:id}/events",
    response={202: RunEventOut, frozenset({400, 401, 403, 404, 409, 413}): ErrorOut},
    summary="Send an event to a run: a wait for it (ctx.step.waitForEvent) resumes the run",
)
def send_run_event(request, id: UUID, body: RunEventIn):
    run = run_for(request, id, Action.INVOKE)
    try:
        steps.send_event(run, body.name, json.dumps(body.payload), request.principal.label)
    except steps.StepError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    record(request, run.tenant, "run.event", run.worker.name, run=str(run.code), event=body.name)
    return Status(202, {"name": body.name, "delivered": [run.code]})


@router.post(
    "/events",
    response={202: RunEventOut, frozenset({400, 401, 403, 404, 413}): ErrorOut},
    summary="Send an event to every run of a worker that waits for it now (and whose match it fits)",
)
def broadcast_event(request, body: RunEventsIn):
    worker = worker_for(request, body.worker, Action.INVOKE)
    payload = json.dumps(body.payload)
    try:
        steps.check_event(body.name, payload)
    except steps.StepError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    delivered = []
    for run in steps.waiting_runs(worker.pk, body.name, payload):
        steps.send_event(run, body.name, payload, request.principal.label)
        delivered.append(run.code)
    record(request, worker.tenant, "run.event", worker.name, event=body.name, runs=len(delivered))
    return Status(202, {"name": body.name, "delivered": delivered})


@router.post(
    "/runs/{uuid:id}/cancel",
    response={200: RunOut, **CHANGE_ERRORS},
    summary="Cancel a run that is not being attempted now (queued, retrying, sleeping, waiting)",
)
def cancel_run(request, id: UUID):
    run = run_for(request, id, Action.INVOKE)
    if not cancel(run, request.principal.label):
        raise ApiError(409, "conflict", f"This run is {Run.objects.get(pk=run.pk).status}: only "
                       "a run that waits (queued, retrying, sleeping, waiting) is canceled.")  # fmt: skip
    record(request, run.tenant, "run.cancel", run.worker.name, run=str(run.code))
    run.refresh_from_db()
    return run_json(run)


@router.post(
    "/runs/{uuid:id}/discard",
    response={200: RunOut, **CHANGE_ERRORS},
    summary="Discard a dead letter: kept, but off the list",
)
def discard_run(request, id: UUID):
    run = run_for(request, id, Action.INVOKE)
    if not discard(run, request.principal.label):
        raise ApiError(409, "not_dead", "Only dead or failed runs not discarded yet are discarded.")
    record(request, run.tenant, "run.discard", run.worker.name, run=str(run.code))
    run.refresh_from_db()
    return run_json(run)


@router.post(
    "/dead-letters/replay",
    response={202: RunList, **CHANGE_ERRORS},
    summary="Replay every dead letter of the tenant, or of one worker",
)
def replay_all(request, body: ReplayManyIn):
    found = tenant_for(request, body.tenant, Action.INVOKE)
    letters = dead_letters(RUNS.filter(tenant=found))
    if body.worker is not None:
        letters = letters.filter(worker__code=body.worker)
    new = []
    for run in letters[:500]:
        try:
            new.append(replay(run, body.onProduction, request.principal.label))
        except ValueError:
            continue  # its worker serves nothing now: it stays a dead letter
    record(request, found, "run.replay_all", body.worker and str(body.worker) or "", count=len(new))
    return Status(202, {"runs": [run_json(r, attempts=False) for r in new], "next": None})


# --- retry policy ---------------------------------------------------------------------------


@router.get(
    "/workers/{uuid:id}/retry-policy",
    response={200: RetryPolicyOut, **ERRORS},
    summary="How the worker's runs are retried",
)
def get_policy(request, id: UUID):
    return policy_json(worker_for(request, id, Action.READ))


def policy_json(worker) -> dict:
    p = policy(worker)
    return {
        "attempts": p["max_attempts"], "backoffSeconds": p["backoff_seconds"],
        "maxDelaySeconds": p["max_delay_seconds"], "retryOn": p["retry_on"],
    }  # fmt: skip


@router.put(
    "/workers/{uuid:id}/retry-policy",
    response={200: RetryPolicyOut, **CHANGE_ERRORS},
    summary="Set how the worker's runs are retried (runs accepted from now on)",
)
def put_policy(request, id: UUID, body: RetryPolicyIn):
    worker = worker_for(request, id, Action.DEPLOY)
    worker.retry_attempts = body.attempts
    worker.retry_backoff_seconds = body.backoffSeconds
    worker.retry_max_delay_seconds = body.maxDelaySeconds
    worker.retry_on = sorted(set(body.retryOn))
    worker.save(update_fields=["retry_attempts", "retry_backoff_seconds",
                               "retry_max_delay_seconds", "retry_on"])  # fmt: skip
    record(request, worker.tenant, "worker.retry_policy", worker.name, **policy_json(worker))
    return policy_json(worker)


# --- schedules ------------------------------------------------------------------------------


def schedule_json(s: Schedule) -> dict:
    return {
        "id": s.code, "worker": s.worker.code, "function": s.function, "cron": s.cron,
        "timeZone": s.time_zone, "payload": loads(s.payload), "paused": s.paused,
        "nextFirings": [] if s.paused else next_firings(s, count=3),
        "lastFiredAt": s.last_fired_at, "missed": s.missed, "createdAt": s.created,
    }  # fmt: skip


@router.get(
    "/workers/{uuid:id}/schedules",
    response={200: ScheduleList, **ERRORS},
    summary="A worker's schedules",
)
def list_schedules(request, id: UUID):
    worker = worker_for(request, id, Action.READ)
    return {"schedules": [schedule_json(s) for s in worker.schedules.select_related("worker")]}


@router.post(
    "/workers/{uuid:id}/schedules",
    response={201: ScheduleOut, frozenset({400, 401, 403, 404, 409, 413}): ErrorOut},
    summary="Run a function on a cron schedule",
)
def create_schedule(request, id: UUID, body: ScheduleIn):
    worker = worker_for(request, id, Action.DEPLOY)
    payload = json.dumps(body.payload)
    try:
        check(body.cron, body.timeZone, payload)
        check_quota(worker.tenant, payload)
    except ScheduleError as exc:
        raise ApiError(409, "invalid_schedule", str(exc)) from exc
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    schedule = Schedule(
        tenant=worker.tenant, worker=worker, function=body.function, cron=body.cron.strip(),
        time_zone=body.timeZone, payload=payload, paused=body.paused,
        created_by=request.principal.label,
    )  # fmt: skip
    arm(schedule)
    schedule.save()
    record(request, worker.tenant, "schedule.create", worker.name, cron=schedule.cron,
           function=schedule.function)  # fmt: skip
    return Status(201, schedule_json(schedule))


def schedule_for(request, id: UUID, action: Action) -> Schedule:
    found = Schedule.objects.visible_to(request.principal).select_related("worker", "tenant")
    schedule = found.filter(code=id).first()
    if schedule is None:
        raise not_found("schedule")
    require(request, action, schedule)
    return schedule


@router.get("/schedules/{uuid:id}", response={200: ScheduleOut, **ERRORS}, summary="A schedule")
def get_schedule(request, id: UUID):
    return schedule_json(schedule_for(request, id, Action.READ))


@router.patch(
    "/schedules/{uuid:id}",
    response={200: ScheduleOut, **CHANGE_ERRORS},
    summary="Pause, resume or change a schedule",
)
def change_schedule(request, id: UUID, body: ScheduleChangeIn):
    schedule = schedule_for(request, id, Action.DEPLOY)
    given = body.model_dump(exclude_unset=True)
    if "cron" in given:
        schedule.cron = body.cron.strip()
    if "timeZone" in given:
        schedule.time_zone = body.timeZone
    if "payload" in given:
        schedule.payload = json.dumps(body.payload)
    if "function" in given:
        schedule.function = body.function
    if "paused" in given:
        schedule.paused = body.paused
    try:
        check(schedule.cron, schedule.time_zone, schedule.payload)
    except ScheduleError as exc:
        raise ApiError(409, "invalid_schedule", str(exc)) from exc
    arm(schedule)  # resumed or changed: from now on, no catching up
    schedule.save()
    record(request, schedule.tenant, "schedule.change", schedule.worker.name, **{
        k: v for k, v in given.items() if k != "payload"})  # fmt: skip
    return schedule_json(schedule)


@router.delete(
    "/schedules/{uuid:id}", response={204: None, **CHANGE_ERRORS}, summary="Delete a schedule"
)
def delete_schedule(request, id: UUID):
    schedule = schedule_for(request, id, Action.DEPLOY)
    schedule.delete()
    record(request, schedule.tenant, "schedule.delete", schedule.worker.name, cron=schedule.cron)
    return HttpResponse(status=204)
