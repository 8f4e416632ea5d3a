"""The journal of a run's durable steps (ctx.step in its code) and the events sent to runs.

Replay rules (docs/steps.md): a run's function runs again from its top on every attempt and
every resume; a step whose name the journal holds as done is not run again, its remembered
result is given back; step names are unique in a run; code outside steps runs every time.
A sleep or a wait that is not over parks the run (no isolate holds it) until its time, or
until an event it waits for is sent; a run stays on the deployment it started on.

Operations a run's code asks for (through the runtime's host or a generated deployment):
  {"op": "journal"}                               -> {"steps": {name: {status, result}}}
  {"op": "done", "name", "result" (JSON text)}    -> {"result"}: the first one recorded wins
  {"op": "failed", "name", "error"}               -> {}
  {"op": "sleep", "name", "until" (ms)}           -> {"done": true} or {"parked": until}
  {"op": "wait", "name", "event", "until", "match"?}
                                                  -> {"done": true, "result"} or {"parked": until}
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .lifecycle import enqueue
from .models import Run, RunEvent, Step

MAX_STEPS = 1000  # in one run
MAX_RESULT_BYTES = 256 * 1024  # one step's result, as JSON
MAX_JOURNAL_BYTES = 8 * 1024 * 1024  # all of a run's results together
MAX_NAME = 200
LONGEST_PARK = timedelta(days=365)
S = Run.Status


class StepError(ValueError):
    """A step operation refused, for the code that asked (a 400; 413 for a result too big)."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request"):
        super().__init__(message)
        self.status, self.code = status, code


def millis(when: datetime | None) -> int | None:
    return int(when.timestamp() * 1000) if when else None


def moment(ms: object) -> datetime:
    if not isinstance(ms, int | float):
        raise StepError("`until` is a time in milliseconds since the epoch.")
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if when > timezone.now() + LONGEST_PARK:
        raise StepError(f"A step parks a run for at most {LONGEST_PARK.days} days.")
    return when


def journal(run: Run) -> dict[str, dict[str, Any]]:
    return {
        s.name: {"status": s.status, "kind": s.kind, "result": s.result or None}
        for s in run.steps.only("name", "status", "kind", "result")
    }


def matches(payload: str, match: dict | None) -> bool:
    if not match:
        return True
    try:
        data = json.loads(payload)
    except ValueError:
        return False
    return isinstance(data, dict) and all(data.get(k) == v for k, v in match.items())


def perform(run: Run, body: dict[str, Any], request_id: str = "") -> dict[str, Any]:
    op = body.get("op")
    if op == "journal":
        return {"steps": journal(run)}
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
        raise StepError(f"A step's name is 1 to {MAX_NAME} characters.")
    now = timezone.now()
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=run.pk).first()  # one step change at a time
        step = Step.objects.filter(run=run, name=name).first()
        if step is None:
            if run.steps.count() >= MAX_STEPS:
                raise StepError(f"A run has at most {MAX_STEPS} steps.", code="too_many_steps")
            kind = {"sleep": Step.Kind.SLEEP, "wait": Step.Kind.WAIT}.get(str(op), Step.Kind.RUN)
            step = Step(run=run, name=name, kind=kind, status=Step.Status.PARKED, started_at=now)
        elif step.status == Step.Status.DONE:
            # Finished once: whatever asks again gets what it finished with.
            return {"done": True, "result": step.result or "null"}
        step.request_id = request_id[:64] or step.request_id
        if op == "done":
            return finish(run, step, body.get("result"), now)
        if op == "failed":
            step.kind, step.status, step.tries = Step.Kind.RUN, Step.Status.FAILED, step.tries + 1
            step.error_message = str(body.get("error") or "")[:5000]
            step.save()
            return {}
        if op == "sleep":
            step.until = step.until or moment(body.get("until"))
            if step.until <= now:
                return over(step, "null", now)
            step.save()
            return {"parked": millis(step.until)}
        if op == "wait":
            event = body.get("event")
            match = body.get("match")
            if not isinstance(event, str) or not 0 < len(event) <= MAX_NAME:
                raise StepError(f"An event's name is 1 to {MAX_NAME} characters.")
            if match is not None and not isinstance(match, dict):
                raise StepError("`match` is an object of fields and the values they must have.")
            if step.pk is None:
                step.event, step.match, step.until = event, match, moment(body.get("until"))
                step.save()
            sent = next((e for e in RunEvent.objects.filter(run=run, name=step.event, taken_by="")
                         if matches(e.payload, step.match)), None)  # fmt: skip
            if sent is not None:
                RunEvent.objects.filter(pk=sent.pk).update(taken_by=step.name)
                return over(step, sent.payload, now)
            if step.until is not None and step.until <= now:
                return over(step, "null", now)  # timed out: the wait answers null
            return {"parked": millis(step.until)}
    raise StepError(f"Unknown step operation {str(op)[:20]!r}.")


def finish(run: Run, step: Step, result: object, now: datetime) -> dict[str, Any]:
    if not isinstance(result, str):
        raise StepError("A step's result is JSON text.")
    if len(result.encode()) > MAX_RESULT_BYTES:
        raise StepError(
            f"A step's result holds at most {MAX_RESULT_BYTES} bytes of JSON; this one has "
            f"{len(result.encode())}. Keep large data elsewhere (ctx.kv) and return its key.",
            413, "result_too_large",
        )  # fmt: skip
    held = sum(len(r.encode()) for r in run.steps.values_list("result", flat=True))
    if held + len(result.encode()) > MAX_JOURNAL_BYTES:
        raise StepError(
            f"A run's steps hold at most {MAX_JOURNAL_BYTES} bytes of results together.",
            413, "result_too_large",
        )  # fmt: skip
    step.kind, step.tries = Step.Kind.RUN, step.tries + 1
    return over(step, result, now)


def over(step: Step, result: str, now: datetime) -> dict[str, Any]:
    step.status, step.result, step.finished_at, step.error_message = (
        Step.Status.DONE, result, now, ""
    )  # fmt: skip
    step.save()
    return {"done": True, "result": result}


def send_event(run: Run, name: str, payload: str, by: str) -> RunEvent:
    """Keep the event with the run; a run waiting for it (and whose match it fits) resumes."""
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        event = RunEvent.objects.create(run=run, name=name, payload=payload, sent_by=by[:200])
        waiting = locked.steps.filter(
            kind=Step.Kind.WAIT, status=Step.Status.PARKED, event=name
        ).first()
        fits = locked.status == S.WAITING and waiting and matches(payload, waiting.match)
        if fits and locked.transition(S.WAITING, S.QUEUED, next_attempt_at=timezone.now()):
            enqueue(locked)
    return event


def waiting_runs(worker_id: int, name: str, payload: str) -> list[Run]:
    """The worker's runs parked on a wait for `name` that this payload fits."""
    steps = Step.objects.filter(
        run__worker_id=worker_id, run__status=S.WAITING, kind=Step.Kind.WAIT,
        status=Step.Status.PARKED, event=name,
    ).select_related("run")  # fmt: skip
    return [s.run for s in steps if matches(payload, s.match)]
