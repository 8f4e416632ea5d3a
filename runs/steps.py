"""The journal of a run's durable steps (ctx.step in its code) and the events sent to runs.

Replay rules (docs/steps.md): a run's function runs again from its top on every attempt and
every resume; a step whose name the journal holds as done is not run again, its remembered
result is given back; step names are unique in a run; code outside steps runs every time.
A sleep or a wait that is not over parks the run (no isolate holds it) until its time, or
until an event it waits for is sent; a run stays on the deployment it started on.

Operations a run's code asks for (through the runtime's host or a generated deployment):
  {"op": "journal"}                               -> {"steps": {name: {status, result}}}
  {"op": "done", "name", "result" (JSON text), "started"?, "lines"?}
                                                  -> {"result"}: the first one recorded wins
  {"op": "failed", "name", "error", "started"?, "lines"?}
                                                  -> {}
  (`started`: when its code began, in ms; `lines`: the sequence numbers of the console lines
  it printed in the call)
  {"op": "sleep", "name", "until" (ms)}           -> {"done": true} or {"parked": until}
  {"op": "wait", "name", "event", "until", "match"?}
                                                  -> {"done": true, "result"} or {"parked": until}
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.db.models.functions import Length
from django.utils import timezone

from .lifecycle import enqueue
from .models import Run, RunEvent, Step

MAX_STEPS = 1000  # in one run
MAX_RESULT_BYTES = 256 * 1024  # one step's result, as JSON
MAX_JOURNAL_BYTES = 8 * 1024 * 1024  # all of a run's results together
MAX_NAME = 200
MAX_LINES = 1000  # sequence numbers kept for one step (a call keeps at most that many lines)
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


def with_lines(steps: list[Step], attempts) -> list[Step]:
    """The steps, each with `printed`: the console lines of its last try, taken from the
    lines its call answered with (kept with the attempt)."""
    by_request = {a.request_id: a.logs for a in attempts if a.request_id}
    for step in steps:
        wanted = set(step.lines)
        logs = by_request.get(step.request_id) or []
        step.printed = [
            line for line in logs if isinstance(line, dict) and line.get("seq") in wanted
        ]
    return steps


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
    if op not in ("done", "failed", "sleep", "wait"):
        raise StepError(f"Unknown step operation {str(op)[:20]!r}.")
    now = timezone.now()
    if op == "wait":
        with transaction.atomic():
            # An event is taken by one wait only (send_event holds the same lock).
            list(Run.objects.select_for_update().filter(pk=run.pk).values_list("pk"))
            return record(run, name, op, body, request_id, now)
    return record(run, name, op, body, request_id, now)


def record(run: Run, name: str, op: str, body: dict, request_id: str, now: datetime) -> dict:
    step = Step.objects.filter(run=run, name=name).first()
    held = 0
    if step is None:
        counted = run.steps.aggregate(n=Count("id"), size=Sum(Length("result")))
        if counted["n"] >= MAX_STEPS:
            raise StepError(f"A run has at most {MAX_STEPS} steps.", code="too_many_steps")
        held = counted["size"] or 0
        kind = {"sleep": Step.Kind.SLEEP, "wait": Step.Kind.WAIT}.get(op, Step.Kind.RUN)
        step = Step(run=run, name=name, kind=kind, status=Step.Status.PARKED, started_at=now)
    elif step.status == Step.Status.DONE:
        # Finished once: whatever asks again gets what it finished with.
        return {"done": True, "result": step.result or "null"}
    step.request_id = request_id[:64] or step.request_id
    try:
        with transaction.atomic():
            return change(run, step, op, body, held, now)
    except IntegrityError:
        # Two attempts of the run raced on a new step: the one recorded first stands.
        there = Step.objects.get(run=run, name=name)
        if there.status == Step.Status.DONE:
            return {"done": True, "result": there.result or "null"}
        return {"parked": millis(there.until)} if there.until else {}


def tried(step: Step, body: dict, now: datetime) -> None:
    """When the step's try began and the lines it printed, as its code says (bounded)."""
    started = body.get("started")
    if isinstance(started, int | float) and not isinstance(started, bool):
        began = datetime.fromtimestamp(started / 1000, tz=UTC)
        if now - timedelta(days=1) <= began <= now:  # a try lasts at most a call's timeout
            step.started_at = began
    lines = body.get("lines")
    if isinstance(lines, list):
        step.lines = [
            n for n in lines[:MAX_LINES] if isinstance(n, int) and not isinstance(n, bool)
        ]


def change(run: Run, step: Step, op: str, body: dict, held: int, now: datetime) -> dict[str, Any]:
    if op in ("done", "failed"):
        tried(step, body, now)
    if op == "done":
        return finish(step, body.get("result"), held, now)
    if op == "failed":
        step.kind, step.status, step.tries = Step.Kind.RUN, Step.Status.FAILED, step.tries + 1
        step.error_message = str(body.get("error") or "")[:5000]
        step.finished_at = now  # (of this try)
        step.save()
        return {}
    if op == "sleep":
        step.until = step.until or moment(body.get("until"))
        if step.until <= now:
            return over(step, "null", now)
        step.save()
        return {"parked": millis(step.until)}
    event, match = body.get("event"), body.get("match")
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


def finish(step: Step, result: object, held: int, now: datetime) -> dict[str, Any]:
    if not isinstance(result, str):
        raise StepError("A step's result is JSON text.")
    size = len(result.encode())
    if size > MAX_RESULT_BYTES:
        raise StepError(
            f"A step's result holds at most {MAX_RESULT_BYTES} bytes of JSON; this one has "
            f"{size}. Keep large data elsewhere (ctx.kv) and return its key.",
            413, "result_too_large",
        )  # fmt: skip
    # (What the run's other steps hold is counted in characters by the database when the
    # step is new: close enough to bytes for a bound.)
    if held + size > MAX_JOURNAL_BYTES:
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


def check_event(name: str, payload: str) -> None:
    """An event's name and payload (JSON text) within bounds, else a StepError saying so."""
    if not 0 < len(name) <= MAX_NAME:
        raise StepError(f"An event's name is 1 to {MAX_NAME} characters.")
    if len(payload.encode()) > MAX_RESULT_BYTES:
        raise StepError(
            f"An event's payload holds at most {MAX_RESULT_BYTES} bytes of JSON.", 413,
            "payload_too_large",
        )  # fmt: skip


def send_event(run: Run, name: str, payload: str, by: str) -> RunEvent:
    """Keep the event with the run; a run waiting for it (and whose match it fits) resumes.
    A StepError for an event out of bounds, or a run that has ended."""
    check_event(name, payload)
    if not run.in_flight:
        raise StepError(f"This run is {run.status}: it waits for nothing.", 409, "conflict")
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
