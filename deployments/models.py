"""Deployments (immutable builds of a worker), their artifacts, invocations and log lines."""

import hashlib
import json
import secrets
import string
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from workers.addresses import deployment_host
from workers.models import Worker
from workers_portal.models import Tenant, TenantScopedQuerySet

from .backends import Backend as BackendInterface
from .backends import get_backend

SHORT_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_short_id() -> str:
    return "".join(secrets.choice(SHORT_ID_ALPHABET) for _ in range(8))


def program_hash(files: dict, entry: str) -> str:
    """One digest for a program: a single index.ts hashes as before (its text alone)."""
    if list(files) == [entry] and entry == "index.ts":
        return hashlib.sha256(files[entry].encode()).hexdigest()
    canonical = json.dumps({"entry": entry, "files": files}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Artifact(models.Model):
    """Built code, stored once per content hash and never changed."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    content = models.TextField()
    size = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.sha256[:12]

    @classmethod
    def store(cls, content: str) -> "Artifact":
        digest = hashlib.sha256(content.encode()).hexdigest()
        artifact, _ = cls.objects.get_or_create(
            sha256=digest, defaults={"content": content, "size": len(content.encode())}
        )
        return artifact


def took(obj: models.Model, status: str, fields: dict) -> None:
    """After a compare-and-swap of `obj`'s status won: the instance says what the row says."""
    obj.status = status  # type: ignore[attr-defined]
    for name, value in fields.items():
        if hasattr(value, "resolve_expression"):  # e.g. F("attempts") + 1: ask the row
            obj.refresh_from_db(fields=[name])
        else:
            setattr(obj, name, value)


class Deployment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        BUILDING = "building"
        READY = "ready"
        ERROR = "error"
        CANCELED = "canceled"

    TERMINAL = frozenset({Status.READY, Status.ERROR, Status.CANCELED})

    class Backend(models.TextChoices):
        LOCAL = "local"
        VERCEL = "vercel"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    short_id = models.CharField(max_length=8, unique=True, default=new_short_id, editable=False)
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="deployments")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="deployments")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The program: path -> text of every uploaded file, and which one is the entry module.
    # `source` keeps the entry module's text (what pages show first).
    files = models.JSONField(default=dict, blank=True)
    entry = models.CharField(max_length=300, default="index.ts")
    source = models.TextField()
    source_hash = models.CharField(max_length=64, editable=False)
    # The packages the build resolved, pinned (Deno's lockfile, JSON): the next deploy of the
    # worker starts from it, so the same files give the same artifact until an update.
    lockfile = models.TextField(blank=True)
    update_lock = models.BooleanField(default=False)
    # Whether the module's default export is a fetch handler serving raw HTTP.
    http = models.BooleanField(default=False)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.LOCAL)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    functions = models.JSONField(default=list, blank=True)
    # The worker's secrets when it was deployed (encrypted): a rollback brings its set back.
    secrets_sealed = models.TextField(blank=True, editable=False)
    error_message = models.TextField(blank=True)
    # Where a failed build's problems are: [{"file", "line", "column", "message"}].
    diagnostics = models.JSONField(default=list, blank=True)
    build_log = models.TextField(blank=True)
    build_attempts = models.PositiveSmallIntegerField(default=0)
    artifact = models.ForeignKey(Artifact, models.PROTECT, null=True, blank=True)
    # The back end's own id and URL for this deployment (Vercel's dpl_… and its .vercel.app
    # address; local_<short id> and nothing on this platform's runtime).
    backend_id = models.CharField(max_length=100, blank=True)
    backend_url = models.CharField(max_length=300, blank=True)
    # The back end's own word for the build's state (Vercel's readyState), as last polled.
    backend_state = models.CharField(max_length=32, blank=True)
    # Whether callers must send the deployment's invocation secret (a private worker's
    # deployment on a back end that cannot check the platform's API keys itself).
    invoke_secret_required = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.short_id}"

    def save(self, *args, **kwargs):
        if not self.files and self.source:
            self.files = {self.entry: self.source}
        if not self.source:
            self.source = self.files.get(self.entry, "")
        if not self.source_hash:
            self.source_hash = program_hash(self.files, self.entry)
        if not self.tenant_id and self.worker_id:
            self.tenant_id = self.worker.tenant_id
        super().save(*args, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @classmethod
    def latest_of(cls, workers, *deferred: str) -> dict:
        """Worker id -> its newest deployment, in two queries however many workers (without
        the `deferred` fields, which a list may not need: a program's text is large)."""
        newest = cls.objects.filter(worker=models.OuterRef("pk")).order_by("-created", "-id")
        ids = Worker.objects.filter(pk__in=[w.pk for w in workers]).annotate(
            latest=models.Subquery(newest.values("id")[:1])
        )
        wanted = dict(ids.values_list("pk", "latest"))
        found = (
            cls.objects.select_related("worker", "tenant")
            .defer(*deferred)
            .in_bulk([d for d in wanted.values() if d])
        )
        return {w: found.get(d) for w, d in wanted.items()}

    @property
    def host(self) -> str:
        return deployment_host(self.worker.name, self.short_id, self.tenant.slug)

    @property
    def runs_on(self) -> BackendInterface:
        """The back end that builds and serves this deployment (deployments.backends)."""
        return get_backend(self.backend)

    @property
    def url(self) -> str:
        return self.runs_on.url(self)

    @property
    def path_url(self) -> str:
        """The URL in a form every client resolves (no wildcard names), where there is one."""
        return self.runs_on.plain_host_url(self) or self.url

    @property
    def program(self):
        from .program import Program, program_from_files

        try:
            return program_from_files(self.files, self.entry)
        except ValueError:  # stored before a rule tightened: built as it was sent
            return Program(files=self.files, entry=self.entry)

    @property
    def packages(self) -> list[dict]:
        """The pinned packages, from the lockfile: [{"name", "version", "registry"}]."""
        try:
            lock = json.loads(self.lockfile) if self.lockfile else {}
        except json.JSONDecodeError:
            return []
        found = []
        for key in sorted(lock.get("npm", {})):
            # "name@1.0.0", "@scope/name@1.0.0", "name@1.0.0_peer@2.0.0" (a peer variant)
            at = key.find("@", 1)
            if at > 0:
                version = key[at + 1 :].split("_")[0]
                found.append({"name": key[:at], "version": version, "registry": "npm"})
        for key in sorted(lock.get("jsr", {})):
            name, _, version = key.rpartition("@")
            found.append({"name": name, "version": version, "registry": "jsr"})
        for url in sorted(lock.get("remote", {})):
            found.append({"name": url, "version": "", "registry": "https"})
        return list({(p["registry"], p["name"], p["version"]): p for p in found}.values())

    @property
    def build_seconds(self) -> float | None:
        """Time from submit to a terminal state."""
        if self.finished_at:
            return (self.finished_at - self.created).total_seconds()
        return None

    def transition(self, old: str, new: str, **fields) -> bool:
        """Compare-and-swap the status; True only for the caller whose update won."""
        now = timezone.now()
        fields.setdefault("updated", now)
        if new in self.TERMINAL:
            fields.setdefault("finished_at", now)
        changed = Deployment.objects.filter(pk=self.pk, status=old).update(status=new, **fields)
        if changed:
            took(self, new, fields)
        return bool(changed)


class Invocation(models.Model):
    class Trigger(models.TextChoices):
        PORTAL = "portal"
        API = "api"
        HTTP = "http"
        ASYNC = "async"
        CRON = "cron"
        RETRY = "retry"

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        TIMEOUT = "timeout"
        CRASHED = "crashed"

    request_id = models.CharField(max_length=64)
    # No index of their own on the foreign keys (the ones below lead with the deployment),
    # and no constraint in the database: each row stored would fire two checks at commit, a
    # third of the ingest's database time. Rows are stored only for deployments the same
    # statement found, under their tenant's ingest lock, which deleting a worker takes too;
    # deleting cascades here, in Django, as before.
    deployment = models.ForeignKey(
        Deployment, models.CASCADE, related_name="invocations", db_index=False, db_constraint=False
    )
    tenant = models.ForeignKey(
        Tenant, models.CASCADE, related_name="invocations", db_index=False, db_constraint=False
    )
    function = models.CharField(max_length=200)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.HTTP)
    status = models.CharField(max_length=16, choices=Status.choices)
    status_code = models.PositiveSmallIntegerField(default=200)
    error_message = models.TextField(blank=True)
    duration_ms = models.FloatField(default=0)
    # Whether its isolate was started for it, and how many console lines it printed.
    cold = models.BooleanField(default=False)
    lines = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField()
    created = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        # With the start in the key: on Postgres the table is split by day of start
        # (deployments.partitions), and a re-sent call keeps its start.
        constraints = [
            models.UniqueConstraint(fields=["request_id", "started_at"], name="unique_invocation")
        ]
        indexes = [
            models.Index(fields=["deployment", "-started_at"]),
            # History pages walk a deployment's calls newest first, a page at a time by id.
            models.Index(fields=["deployment", "-id"], name="invocation_history"),
        ]

    def __str__(self) -> str:
        return f"{self.function} {self.request_id}"


class LogEntry(models.Model):
    class Level(models.TextChoices):
        DEBUG = "debug"
        INFO = "info"
        LOG = "log"
        WARN = "warn"
        ERROR = "error"

    # Indexed through the composite indexes below, not checked by the database (as
    # Invocation's).
    tenant = models.ForeignKey(
        Tenant, models.CASCADE, related_name="log_entries", db_index=False, db_constraint=False
    )
    deployment = models.ForeignKey(
        Deployment, models.CASCADE, related_name="log_entries", db_index=False, db_constraint=False
    )
    request_id = models.CharField(max_length=64)
    seq = models.PositiveIntegerField()
    function = models.CharField(max_length=200, blank=True)
    timestamp = models.DateTimeField()
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.LOG)
    message = models.TextField()

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = "log line"
        # Lines are identified by (request id, sequence), never by text: two identical lines
        # in one millisecond are both real, and a re-sent one is not new. The timestamp is
        # in the key because the table is split by day on Postgres (deployments.partitions);
        # a re-sent line keeps its timestamp.
        constraints = [
            models.UniqueConstraint(
                fields=["request_id", "seq", "timestamp"], name="unique_log_line"
            )
        ]
        indexes = [
            models.Index(fields=["deployment", "id"]),
            # A tenant's lines in order: log drains, and retention of a tenant that keeps
            # lines for less time than others.
            models.Index(fields=["tenant", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.request_id}#{self.seq} {self.message[:60]}"


class ProductionChange(models.Model):
    """What a worker's production URL served from one generation of its tenant on: the
    history of promotions, rollbacks, canaries and releases. A call made through a production
    URL carries its generation to the calls it makes, which resolve as of that generation."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+")
    generation = models.PositiveBigIntegerField()
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="production_changes")
    production = models.ForeignKey(Deployment, models.CASCADE, null=True, related_name="+")
    canary = models.ForeignKey(Deployment, models.CASCADE, null=True, blank=True, related_name="+")
    canary_percent = models.PositiveSmallIntegerField(default=0)
    how = models.CharField(max_length=40)
    by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-generation"]
        constraints = [
            models.UniqueConstraint(
                fields=["worker", "generation"], name="one_change_per_worker_and_generation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.generation}"


class Release(models.Model):
    """Several workers' deployments, promoted together and reverted together."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        LIVE = "live"  # promoted, and still what those workers serve as far as it knows
        REVERTED = "reverted"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="releases")
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)
    promoted_by = models.CharField(max_length=200, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    generation = models.PositiveBigIntegerField(null=True, blank=True)
    # What each worker served just before the promotion ({worker code: deployment code or
    # None}): reverting brings exactly this set back.
    previous = models.JSONField(default=dict, blank=True)
    reverted_by = models.CharField(max_length=200, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"


class ReleaseItem(models.Model):
    release = models.ForeignKey(Release, models.CASCADE, related_name="items")
    worker = models.ForeignKey(Worker, models.CASCADE, related_name="+")
    deployment = models.ForeignKey(Deployment, models.CASCADE, related_name="+")

    class Meta:
        ordering = ["worker__name"]
        constraints = [
            models.UniqueConstraint(fields=["release", "worker"], name="one_deployment_per_worker")
        ]

    def __str__(self) -> str:
        return f"{self.release}: {self.deployment}"


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

    IN_FLIGHT = frozenset({Status.QUEUED, Status.RUNNING, Status.RETRYING})

    class Trigger(models.TextChoices):
        ASYNC = "async"
        CRON = "cron"
        REPLAY = "replay"

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
        return bool(changed)

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
    duration_ms = models.FloatField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    logs = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="one_attempt_per_number")
        ]

    def __str__(self) -> str:
        return f"{self.run} #{self.number}"


class CallCounts(models.Model):
    """What a minute or an hour of calls adds up (Metric, TenantMetric)."""

    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # threw, crashed, or answered 5xx
    timeouts = models.PositiveIntegerField(default=0)
    cold_starts = models.PositiveIntegerField(default=0)
    duration_ms_sum = models.FloatField(default=0)

    class Meta:
        abstract = True


class Metric(CallCounts):
    """Calls of one function of one deployment in one minute (period "m") or hour ("h"),
    added up as invocations arrive: pages read these, never the raw rows. Durations are kept
    as a histogram (MetricBucket) so percentiles can be read over any span."""

    class Period(models.TextChoices):
        MINUTE = "m"
        HOUR = "h"

    # Indexed by the unique key and the indexes below, which lead with them.
    deployment = models.ForeignKey(
        Deployment, models.CASCADE, related_name="metrics", db_index=False
    )
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+", db_index=False)
    function = models.CharField(max_length=200)
    period = models.CharField(max_length=1, choices=Period.choices)
    start = models.DateTimeField()
    # Console lines printed in the minute, and their bytes (for usage): counted as they
    # are stored, so metering never reads the lines themselves.
    log_lines = models.PositiveIntegerField(default=0)
    log_bytes = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "function", "period", "start"], name="one_metric_row"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "period", "start"]),
            models.Index(fields=["period", "start"]),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.function} {self.period} {self.start}"


class BucketCount(models.Model):
    """How many calls of a minute or an hour took a duration in bucket `bucket`
    (MetricBucket, TenantMetricBucket)."""

    period = models.CharField(max_length=1)
    start = models.DateTimeField()
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class MetricBucket(BucketCount):
    """How many calls of a Metric's row took a duration in bucket `bucket`: bucket b holds
    durations up to 0.1 ms x 1.25^(b+1) (64 buckets, up to about 130 s; 25 % wide)."""

    deployment = models.ForeignKey(Deployment, models.CASCADE, related_name="+", db_index=False)
    function = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["deployment", "function", "period", "start", "bucket"],
                name="one_metric_bucket",
            )
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.function} {self.start} #{self.bucket}"


class TenantMetric(CallCounts):
    """A tenant's calls in one minute or hour, all its deployments together: what its
    dashboard chart reads (a row a minute, where the tenant's Metric rows are one per
    deployment and function a minute: millions a day for thousands of busy workers)."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+", db_index=False)
    period = models.CharField(max_length=1, choices=Metric.Period.choices)
    start = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "period", "start"], name="one_tenant_metric")
        ]
        indexes = [models.Index(fields=["period", "start"])]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.period} {self.start}"


class TenantMetricBucket(BucketCount):
    """A TenantMetric's duration histogram (the buckets of MetricBucket)."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+", db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "period", "start", "bucket"], name="one_tenant_metric_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.start} #{self.bucket}"


class UsageDay(models.Model):
    """What a tenant used in one day (UTC), for billing: kept 13 months whatever the log
    retention, recomputed by beat for the current and the previous day."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="usage_days")
    day = models.DateField()
    invocations = models.PositiveBigIntegerField(default=0)
    # Compute: each call's duration times its deployment's memory limit.
    gb_seconds = models.FloatField(default=0)
    build_seconds = models.FloatField(default=0)
    log_lines = models.PositiveBigIntegerField(default=0)
    log_bytes = models.PositiveBigIntegerField(default=0)
    runs = models.PositiveBigIntegerField(default=0)
    # CPU time of the tenant's sandbox processes (all their threads), as the runtime measured.
    cpu_seconds = models.FloatField(default=0)
    updated = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-day"]
        verbose_name = "usage per day"
        verbose_name_plural = "usage per day"
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="one_usage_day")]

    def __str__(self) -> str:
        return f"{self.tenant.slug} {self.day}"


class CpuCharge(models.Model):
    """CPU time the runtime charged a tenant on a day (UTC): added to as hosts report it
    (each report once, by its id), read into the day's usage."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+")
    day = models.DateField()
    ms = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="one_cpu_charge_day")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.ms:.0f} ms"


class CpuReport(models.Model):
    """A runtime host's CPU report already counted (its id), so a re-sent one counts once;
    pruned with usage."""

    report_id = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.report_id


class LogDrain(models.Model):
    """A tenant's own HTTP endpoint that receives its console lines as signed NDJSON."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAUSED = "paused"  # after repeated failures; resumed by a member

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="log_drains")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The last line delivered (its id): delivery resumes after it, nothing sent twice on purpose.
    cursor = models.PositiveBigIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)  # in a row
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    last_delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_lines = models.PositiveBigIntegerField(default=0)
    created_by = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.tenant.slug} -> {self.url}"
