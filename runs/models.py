"""Durable runs of functions, their attempts, and the schedules that start them. The tables
keep the names they had under `deployments`."""

import uuid

from django.db import models
from django.utils import timezone

from deployments.models import Deployment, took
from tenancy.events import emit
from tenancy.models import Tenant, TenantScopedQuerySet
from workers.models import Worker


class Schedule(models.Model):
    """A cron expression in a time zone that starts a run of one function with a payload."""

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="schedules")
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="schedules")
    function = models.CharField(max_length=200)
    cron = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC")
    payload = models.TextField(default="null")  # JSON text, as sent
    paused = models.BooleanField(default=False)
    next_fire_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    missed = models.PositiveIntegerField(default=0, help_text="Firings skipped after outages.")
    created_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "deployments_schedule"
        ordering = ["worker__name", "function", "id"]

    def __str__(self) -> str:
        return f"{self.worker} {self.function} {self.cron}"


class Run(models.Model):
    """One durable call of a function: stored before it is acknowledged, attempted until it
    succeeds or its retry policy gives up (then it is a dead letter)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RETRYING = "retrying"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # a failure no retry can mend (the function or deployment is gone)
        DEAD = "dead"  # the function kept failing: a dead letter, to replay or discard
        # Parked by its code (ctx.step): no isolate holds it; it resumes at next_attempt_at,
        # or when the event it waits for is sent.
        SLEEPING = "sleeping"
        WAITING = "waiting"

    IN_FLIGHT = frozenset(
        {Status.QUEUED, Status.RUNNING, Status.RETRYING, Status.SLEEPING, Status.WAITING}
    )
    PARKED = frozenset({Status.SLEEPING, Status.WAITING})

    class Trigger(models.TextChoices):
        ASYNC = "async"
        CRON = "cron"
        REPLAY = "replay"
        ENQUEUE = "enqueue"  # by a worker's code: ctx.enqueue

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="runs")
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="runs")
    deployment = models.ForeignKey(Deployment, models.CASCADE, related_name="runs")
    function = models.CharField(max_length=200)
    payload = models.TextField(default="null")  # JSON text, as sent
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.ASYNC)
    schedule = models.ForeignKey(
        Schedule, models.SET_NULL, null=True, blank=True, related_name="runs"
    )
    replay_of = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="replays"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    result = models.TextField(blank=True)  # JSON text of the result, once succeeded
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The retry policy when the run was accepted: a later change applies to later runs.
    max_attempts = models.PositiveSmallIntegerField(default=3)
    backoff_seconds = models.FloatField(default=1.0)
    max_delay_seconds = models.FloatField(default=300.0)
    retry_on = models.JSONField(default=list)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    # While running: until when the attempt is presumed alive (the sweep takes it over after).
    lease_until = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, blank=True)
    # Who started it: an API key's prefix (it may read the run), or "" for a public call.
    started_by_key = models.CharField(max_length=12, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    discarded_at = models.DateTimeField(null=True, blank=True)
    discarded_by = models.CharField(max_length=200, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "deployments_run"
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="one_run_per_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["worker", "-created"]),
            models.Index(fields=["tenant", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.worker} {self.function} {self.code}"

    def transition(self, old, new: str, *, when: dict | None = None, **fields) -> bool:
        """Compare-and-swap the status (as Deployment.transition), from `old` (one status or
        several) and only while `when` (more conditions) holds; True only for the caller
        whose update won. Every change of a run's status goes through here (runs.py)."""
        olds = [old] if isinstance(old, str) else list(old)
        if new in {self.Status.SUCCEEDED, self.Status.FAILED, self.Status.DEAD}:
            fields.setdefault("finished_at", timezone.now())
            fields.setdefault("lease_until", None)
        changed = Run.objects.filter(pk=self.pk, status__in=olds, **(when or {})).update(
            status=new, **fields
        )
        if changed:
            took(self, new, fields)
            if new in (self.Status.FAILED, self.Status.DEAD):
                self.tell_failure()
        return bool(changed)

    def tell_failure(self) -> None:
        """Tell the tenant's systems (tenancy.events) that this run ended without success."""

        def data(**more) -> dict:  # made only for a subscription that wants it (emit)
            return {
                "worker": self.worker.name,
                "run": {
                    "id": str(self.code), "function": self.function, "status": self.status,
                    "attempts": self.attempts, "errorCode": self.error_code,
                    "error": self.error_message[:2000], "deployment": self.deployment.short_id,
                },
                **more,
            }  # fmt: skip

        if self.status == self.Status.DEAD:
            emit(self.tenant_id, "run.dead", data)
        if self.schedule_id is not None:

            def scheduled() -> dict:
                schedule = Schedule.objects.get(runs=self)
                return data(schedule={"id": str(schedule.code), "cron": schedule.cron})

            emit(self.tenant_id, "schedule.failed", scheduled)

    @property
    def in_flight(self) -> bool:
        return self.status in self.IN_FLIGHT

    @property
    def trigger_header(self) -> str:
        """How its calls are recorded (the contract's triggers): a retry after the first."""
        if self.attempts > 1 or self.trigger == self.Trigger.REPLAY:
            return "retry"
        return "cron" if self.trigger == self.Trigger.CRON else "async"


class RunAttempt(models.Model):
    """One try of a run: when, how it ended, and the call's request id (its console lines)."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="attempt_set")
    number = models.PositiveSmallIntegerField()
    deployment = models.ForeignKey(Deployment, models.CASCADE, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # ok, error, timeout, limit, crashed, lost (its worker died), platform (not the code's)
    outcome = models.CharField(max_length=16, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # Where it threw, in the tenant's own files (the runtime maps the bundle's positions).
    error_stack = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    logs = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "deployments_runattempt"
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="one_attempt_per_number")
        ]

    def __str__(self) -> str:
        return f"{self.run} #{self.number}"


class Step(models.Model):
    """One durable step of a run (ctx.step in its code), as its journal keeps it: a step that
    finished is never run again; its result is given back on every resume and retry."""

    class Kind(models.TextChoices):
        RUN = "run"
        SLEEP = "sleep"
        WAIT = "wait"  # for an event

    class Status(models.TextChoices):
        DONE = "done"
        FAILED = "failed"  # its last try threw: tried again with the run
        PARKED = "parked"  # a sleep or a wait not over yet

    run = models.ForeignKey(Run, models.CASCADE, related_name="steps")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.RUN)
    status = models.CharField(max_length=8, choices=Status.choices)
    tries = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True)  # JSON text
    error_message = models.TextField(blank=True)
    until = models.DateTimeField(null=True, blank=True)  # a sleep's end, a wait's timeout
    event = models.CharField(max_length=200, blank=True)  # what a wait waits for
    match = models.JSONField(null=True, blank=True)  # {field: value} the event's payload must have
    request_id = models.CharField(max_length=64, blank=True)  # the call that ran it last
    # The console lines its code printed in that call (their sequence numbers in the call's
    # lines): steps run side by side keep theirs apart.
    lines = models.JSONField(default=list, blank=True)
    printed: list[dict]  # those lines themselves, where runs.steps.with_lines looked them up

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="one_step_per_name")]

    def __str__(self) -> str:
        return f"{self.run} {self.name}"


class RunEvent(models.Model):
    """An event sent to a run (the API, the portal, the CLI, ctx.sendEvent): a wait for its
    name takes the first one it matches, sent before the wait or after."""

    run = models.ForeignKey(Run, models.CASCADE, related_name="events")
    name = models.CharField(max_length=200)
    payload = models.TextField(default="null")  # JSON text
    sent_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    taken_by = models.CharField(max_length=200, blank=True)  # the wait that took it

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.run} {self.name}"
