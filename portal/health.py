"""A worker's health at a glance (its Overview): the last 24 hours of invocations, per hour,
with errors and duration percentiles, from the same per-minute series its 24-hour chart
draws (telemetry.metrics), read once for both, so the page costs the same with a thousand
calls or ten million."""

from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from telemetry.metrics import Point, merged, percentile
from telemetry.models import Invocation, Metric

HOURS = 24


def worker_health(deployment_ids: list[int], day: list[Point]) -> dict:
    """`day`: the worker's 24-hour series (telemetry.metrics.series, range "24h")."""
    now = timezone.now()
    since = (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    per_hour = {since + timedelta(hours=n): {"total": 0, "failed": 0} for n in range(HOURS)}
    shown = [point for point in day if point.start.replace(minute=0) in per_hour]
    for point in shown:
        hour = per_hour[point.start.replace(minute=0)]
        hour["total"] += point.calls
        hour["failed"] += point.errors
    counts = merged(shown)
    peak = max(row["total"] for row in per_hour.values())
    hours = [
        {
            "start": start,
            **row,
            # bar heights in percent of the busiest hour; failures drawn over the calls
            "height": round(100 * row["total"] / peak) if peak else 0,
            "failed_height": round(100 * row["failed"] / peak) if peak else 0,
        }
        for start, row in per_hour.items()
    ]
    total = sum(row["total"] for row in per_hour.values())
    failed = sum(row["failed"] for row in per_hour.values())
    return {
        "total": total,
        "failed": failed,
        "error_rate": (100 * failed / total) if total else None,
        "last": last_call(deployment_ids, since) if total else None,
        "as_of": now,
        "p50": percentile(counts, 50),
        "p95": percentile(counts, 95),
        "hours": hours,
        "since": since,
    }


def last_call(deployment_ids: list[int], since) -> object:
    """When the last call started, to the second: the minutes say which deployments were
    called in the last busy minute, and their own index says when within it."""
    minutes = Metric.objects.filter(
        deployment_id__in=deployment_ids, period="m", start__gte=since, calls__gt=0
    )
    minute = minutes.aggregate(last=Max("start"))["last"]
    if minute is None:
        return None
    called = list(minutes.filter(start=minute).values_list("deployment_id", flat=True))
    exact = Invocation.objects.filter(deployment_id__in=called, started_at__gte=minute).aggregate(
        last=Max("started_at")
    )["last"]
    return exact or minute
