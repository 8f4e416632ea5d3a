"""Usage per tenant per day (UTC), for billing: invocations, compute (GB-seconds: each
call's duration times its deployment's memory limit), log lines and bytes from the
per-minute figures, build time, async runs, the CPU time of its sandbox processes, and its
workers' key-value reads, writes, stored bytes and enqueued runs. Beat recomputes the current and the previous day
every few minutes (idempotent: a day's row is written whole), well before raw lines are
pruned, so usage outlives the logs; rows are kept 13 months."""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from deployments.models import Deployment
from kv.models import Entry
from runs.models import Run
from tenancy.limits import effective_limits

from .models import CpuCharge, CpuReport, Metric, UsageDay

FIELDS = (
    "invocations", "gb_seconds", "build_seconds", "log_lines", "log_bytes", "runs", "cpu_seconds",
    "kv_reads", "kv_writes", "kv_bytes", "queue_messages",
)  # fmt: skip
OPERATIONS = ("kv_reads", "kv_writes")


def day_span(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def measure(day: date) -> dict[int, dict]:
    """Tenant id -> what it used on `day`."""
    start, end = day_span(day)
    used: dict[int, dict] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    per_deployment = (
        Metric.objects.filter(period="m", start__gte=start, start__lt=end)
        .values("tenant_id", "deployment_id")
        .annotate(
            calls=Sum("calls"),
            ms=Sum("duration_ms_sum"),
            lines=Sum("log_lines"),
            size=Sum("log_bytes"),
        )
    )
    memory = {}
    for row in per_deployment:
        d = row["deployment_id"]
        if d not in memory:
            deployment = Deployment.objects.select_related("worker__tenant").get(pk=d)
            memory[d] = effective_limits(deployment.worker)["memory_mb"]
        used[row["tenant_id"]]["log_lines"] += row["lines"]
        used[row["tenant_id"]]["log_bytes"] += row["size"]
        if not row["calls"]:
            continue  # lines only
        used[row["tenant_id"]]["invocations"] += row["calls"]
        used[row["tenant_id"]]["gb_seconds"] += row["ms"] / 1000 * memory[d] / 1024
    builds = (
        Deployment.objects.filter(
            finished_at__gte=start, finished_at__lt=end, started_at__isnull=False
        )
        .values("tenant_id")
        .annotate(total=Sum(F("finished_at") - F("started_at")))
    )
    for row in builds:
        used[row["tenant_id"]]["build_seconds"] += (
            row["total"].total_seconds() if row["total"] else 0
        )
    runs = (
        Run.objects.filter(created__gte=start, created__lt=end)
        .values("tenant_id")
        .annotate(n=Count("id"))
    )
    for row in runs:
        used[row["tenant_id"]]["runs"] += row["n"]
    queued = (
        Run.objects.filter(created__gte=start, created__lt=end, trigger=Run.Trigger.ENQUEUE)
        .values("tenant_id")
        .annotate(n=Count("id"))
    )
    for row in queued:
        used[row["tenant_id"]]["queue_messages"] += row["n"]
    for charge in CpuCharge.objects.filter(day=day):
        used[charge.tenant_id]["cpu_seconds"] += charge.ms / 1000
        used[charge.tenant_id]["kv_reads"] += charge.kv_reads
        used[charge.tenant_id]["kv_writes"] += charge.kv_writes
    if day == timezone.now().date():
        stored = Entry.objects.values("namespace__tenant_id").annotate(b=Sum("size"))
        for row in stored:
            used[row["namespace__tenant_id"]]["kv_bytes"] = row["b"] or 0
    else:
        for row in used.values():
            del row["kv_bytes"]  # what the day ended with, written then: kept
    return used


def charge_operations(tenant_id: int, reads: int, writes: int, day: date | None = None) -> None:
    """Adds key-value operations served to a generated (Vercel) deployment."""
    day = day or timezone.now().date()
    CpuCharge.objects.get_or_create(tenant_id=tenant_id, day=day)
    CpuCharge.objects.filter(tenant_id=tenant_id, day=day).update(
        kv_reads=F("kv_reads") + reads, kv_writes=F("kv_writes") + writes
    )


def charge_cpu(
    report_id: str,
    charges: dict[int, float],
    day: date | None = None,
    operations: dict[int, tuple[int, int]] | None = None,
) -> bool:
    """Adds a runtime host's report of CPU milliseconds per tenant to the day's charges, once:
    a report sent again (its answer was lost) adds nothing. False if it was seen already."""
    day = day or timezone.now().date()
    with transaction.atomic():
        _, created = CpuReport.objects.get_or_create(report_id=report_id[:64])
        if not created:
            return False
        for tenant_id, ms in charges.items():
            CpuCharge.objects.get_or_create(tenant_id=tenant_id, day=day)
            CpuCharge.objects.filter(tenant_id=tenant_id, day=day).update(ms=F("ms") + ms)
        for tenant_id, (reads, writes) in (operations or {}).items():
            charge_operations(tenant_id, reads, writes, day)
    return True


def meter(days: int = 2, today: date | None = None) -> int:
    """Write the rows of the last `days` days (today included); the rows written."""
    today = today or timezone.now().date()
    written = 0
    for back in range(days):
        day = today - timedelta(days=back)
        for tenant_id, row in measure(day).items():
            UsageDay.objects.update_or_create(tenant_id=tenant_id, day=day, defaults=row)
            written += 1
    return written


def prune(keep_days: int) -> int:
    cutoff = timezone.now().date() - timedelta(days=keep_days)
    CpuCharge.objects.filter(day__lt=cutoff).delete()
    CpuReport.objects.filter(created__lt=timezone.now() - timedelta(days=2)).delete()
    return UsageDay.objects.filter(day__lt=cutoff).delete()[0]
