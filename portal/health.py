"""A worker's health at a glance (its Overview): the last 24 hours of invocations, per hour,
with errors and duration percentiles, read from the per-minute figures
(deployments.metrics), so the page costs the same with a thousand calls or ten million."""

from datetime import timedelta

from django.db.models import Max, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from deployments.metrics import percentile
from deployments.models import Metric, MetricBucket

HOURS = 24


def worker_health(worker) -> dict:
    now = timezone.now()
    since = (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    deployment_ids = list(worker.deployments.values_list("pk", flat=True))
    minutes = Metric.objects.filter(deployment_id__in=deployment_ids, period="m", start__gte=since)
    per_hour = {
        row["hour"]: row
        for row in minutes.annotate(hour=TruncHour("start"))
        .values("hour")
        .annotate(total=Sum("calls"), failed=Sum("errors"))
    }
    peak = max((row["total"] for row in per_hour.values()), default=0)
    hours = []
    for n in range(HOURS):
        start = since + timedelta(hours=n)
        row = per_hour.get(start, {"total": 0, "failed": 0})
        hours.append(
            {
                "start": start,
                "total": row["total"],
                "failed": row["failed"],
                # bar heights in percent of the busiest hour; failures drawn over the calls
                "height": round(100 * row["total"] / peak) if peak else 0,
                "failed_height": round(100 * row["failed"] / peak) if peak else 0,
            }
        )
    counts = dict(
        MetricBucket.objects.filter(deployment_id__in=deployment_ids, period="m", start__gte=since)
        .values("bucket")
        .annotate(total=Sum("count"))
        .values_list("bucket", "total")
    )
    total = sum(row["total"] for row in per_hour.values())
    failed = sum(row["failed"] for row in per_hour.values())
    return {
        "total": total,
        "failed": failed,
        "error_rate": (100 * failed / total) if total else None,
        "last": minutes.aggregate(last=Max("start"))["last"] if total else None,
        "p50": percentile(counts, 50),
        "p95": percentile(counts, 95),
        "hours": hours,
        "since": since,
    }
