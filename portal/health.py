"""A worker's health at a glance (its Overview): the last 24 hours of invocations, per hour,
with errors and durations, read from the invocation records."""

from datetime import timedelta

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from deployments.models import Invocation

HOURS = 24
SAMPLE = 1000  # durations: the newest calls' percentiles, a bounded read


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def worker_health(worker) -> dict:
    now = timezone.now()
    since = (now - timedelta(hours=HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    calls = Invocation.objects.filter(deployment__worker=worker, started_at__gte=since)
    totals = calls.aggregate(
        total=Count("id"), failed=Count("id", filter=~Q(status="ok")), last=Max("started_at")
    )
    per_hour = {
        row["hour"]: row
        for row in calls.annotate(hour=TruncHour("started_at"))
        .values("hour")
        .annotate(total=Count("id"), failed=Count("id", filter=~Q(status="ok")))
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
    durations = list(calls.order_by("-started_at").values_list("duration_ms", flat=True)[:SAMPLE])
    total = totals["total"]
    return {
        "total": total,
        "failed": totals["failed"],
        "error_rate": (100 * totals["failed"] / total) if total else None,
        "last": totals["last"],
        "p50": percentile(durations, 50),
        "p95": percentile(durations, 95),
        "sampled": len(durations),
        "hours": hours,
        "since": since,
    }
