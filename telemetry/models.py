"""What deployments did: invocations, console lines, metrics, usage, and the drains that
carry lines to tenants' systems. The tables keep the names they had under `deployments`."""

import uuid

from django.db import models
from django.utils import timezone

from deployments.models import Deployment
from tenancy.models import Tenant, TenantScopedQuerySet


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
        db_table = "deployments_invocation"
        ordering = ["-started_at"]
        # With the start in the key: on Postgres the table is split by day of start
        # (telemetry.partitions), and a re-sent call keeps its start.
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
        db_table = "deployments_logentry"
        ordering = ["id"]
        verbose_name = "log line"
        # Lines are identified by (request id, sequence), never by text: two identical lines
        # in one millisecond are both real, and a re-sent one is not new. The timestamp is
        # in the key because the table is split by day on Postgres (telemetry.partitions);
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
        db_table = "deployments_metric"
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
        db_table = "deployments_metricbucket"
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
        db_table = "deployments_tenantmetric"
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
        db_table = "deployments_tenantmetricbucket"
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
    # Workers' key-value operations (cached reads included) and what their namespaces hold
    # (at the day's last metering), and runs their code enqueued.
    kv_reads = models.PositiveBigIntegerField(default=0)
    kv_writes = models.PositiveBigIntegerField(default=0)
    kv_bytes = models.PositiveBigIntegerField(default=0)
    queue_messages = models.PositiveBigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        db_table = "deployments_usageday"
        ordering = ["-day"]
        verbose_name = "usage per day"
        verbose_name_plural = "usage per day"
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="one_usage_day")]

    def __str__(self) -> str:
        return f"{self.tenant.slug} {self.day}"


class CpuCharge(models.Model):
    """CPU time and key-value operations the runtime charged a tenant on a day (UTC): added
    to as hosts report them (each report once, by its id), read into the day's usage."""

    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="+")
    day = models.DateField()
    ms = models.FloatField(default=0)
    kv_reads = models.PositiveBigIntegerField(default=0)
    kv_writes = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "deployments_cpucharge"
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="one_cpu_charge_day")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.ms:.0f} ms"


class CpuReport(models.Model):
    """A runtime host's CPU report already counted (its id), so a re-sent one counts once;
    pruned with usage."""

    report_id = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "deployments_cpureport"

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
        db_table = "deployments_logdrain"
        ordering = ["created"]

    def __str__(self) -> str:
        return f"{self.tenant.slug} -> {self.url}"
