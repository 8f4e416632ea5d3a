"""Per-minute and per-hour figures of each deployment's functions, added up as invocations
arrive (the ingest's SQL on Postgres, `add_up` on SQLite), rolled into hours by beat, and
read by the charts as series with percentiles from duration histograms.

Durations go into 64 buckets, each 25 % wider than the one before: bucket b holds durations
up to 0.1 ms x 1.25^(b+1) (about 130 s for the last). A percentile is read as the geometric
middle of the bucket it falls in: within about 12 % of the true value, whatever the span.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import DateTimeField, F, Func, Sum, Value
from django.db.models.functions import TruncHour
from django.utils import timezone

from .models import Metric, MetricBucket, TenantMetric, TenantMetricBucket

BUCKETS = 64
BASE_MS = 0.1
GROWTH = 1.25
BUCKET_SQL = (
    f"least({BUCKETS - 1}, greatest(0, floor(ln(greatest(duration_ms, {BASE_MS}) / {BASE_MS})"
    f" / ln({GROWTH}))))::int"
)


# What a Metric row adds up; a TenantMetric row, the same but lines.
NAMES = ("calls", "errors", "timeouts", "cold_starts", "duration_ms_sum", "log_lines", "log_bytes")
TENANT_NAMES = NAMES[:5]


def bucket(duration_ms: float) -> int:
    """The same as BUCKET_SQL, for SQLite and tests."""
    b = math.floor(math.log(max(duration_ms, BASE_MS) / BASE_MS) / math.log(GROWTH))
    return min(BUCKETS - 1, max(0, b))


def bucket_middle(b: int) -> float:
    return BASE_MS * GROWTH ** (b + 0.5)


def failed(status: str, status_code: int) -> bool:
    return status != "ok" or status_code >= 500


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def row_delta(i) -> dict:
    """What one invocation adds to its minute."""
    return {
        "calls": 1,
        "errors": int(failed(i.status, i.status_code)),
        "timeouts": int(i.status == "timeout"),
        "cold_starts": int(bool(i.cold)),
        "duration_ms_sum": i.duration_ms,
    }


def add_up(invocations, lines=()) -> None:
    """Add invocations and lines just stored to their minutes (the SQLite path; Postgres does
    it in the ingest's own statement)."""
    rows: dict[tuple, dict] = {}
    buckets: dict[tuple, int] = defaultdict(int)

    def row_of(key, tenant_id) -> dict:
        return rows.setdefault(key, {"tenant_id": tenant_id} | dict.fromkeys(NAMES, 0))

    for line in lines:
        row = row_of((line.deployment_id, line.function, minute_of(line.timestamp)), line.tenant_id)
        row["log_lines"] += 1
        row["log_bytes"] += len(line.message.encode())
    tenant_rows: dict[tuple, dict] = {}
    tenant_buckets: dict[tuple, int] = defaultdict(int)
    for i in invocations:
        key = (i.deployment_id, i.function, minute_of(i.started_at))
        row = row_of(key, i.tenant_id)
        tenant_row = tenant_rows.setdefault((i.tenant_id, key[2]), dict.fromkeys(TENANT_NAMES, 0))
        for name, value in row_delta(i).items():
            row[name] += value
            tenant_row[name] += value
        buckets[(*key, bucket(i.duration_ms))] += 1
        tenant_buckets[(i.tenant_id, key[2], bucket(i.duration_ms))] += 1
    for (tenant_id, start), row in tenant_rows.items():
        add_to(TenantMetric, {"tenant_id": tenant_id, "start": start}, row)
    for (tenant_id, start, b), count in tenant_buckets.items():
        add_to(TenantMetricBucket, {"tenant_id": tenant_id, "start": start, "bucket": b},
               {"count": count})  # fmt: skip
    for (deployment_id, function, start), row in rows.items():
        tenant_id = row.pop("tenant_id")
        where = {"deployment_id": deployment_id, "function": function, "start": start}
        add_to(Metric, where, row, tenant_id=tenant_id)
    for (deployment_id, function, start, b), count in buckets.items():
        where = {"deployment_id": deployment_id, "function": function, "start": start,
                 "bucket": b}  # fmt: skip
        add_to(MetricBucket, where, {"count": count})


def add_to(model, where: dict, values: dict, **created_with) -> None:
    """Add `values` to the minute row of `model` at `where`, made if missing."""
    where = {**where, "period": "m"}
    if not model.objects.filter(**where).update(**{k: F(k) + v for k, v in values.items()}):
        model.objects.create(**where, **values, **created_with)


# --- hours and retention -------------------------------------------------------------------


def roll_up_hours(since: datetime | None = None) -> int:
    """(Re)compute the hour rows from the minute rows of the hours since `since` (default:
    the last two), added up by the database: idempotent, so beat may run it as often as it
    likes."""
    now = timezone.now()
    since = (since or now - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    hour = TruncHour("start", tzinfo=UTC)

    def hours_of(model, keys, names):
        minutes = model.objects.filter(period="m", start__gte=since)
        return list(minutes.values(*keys, at=hour).annotate(**{n: Sum(n) for n in names}))

    metrics = hours_of(Metric, ("deployment_id", "function", "tenant_id"), NAMES)
    buckets = hours_of(MetricBucket, ("deployment_id", "function", "bucket"), ("count",))
    tenants = hours_of(TenantMetric, ("tenant_id",), TENANT_NAMES)
    tenant_buckets = hours_of(TenantMetricBucket, ("tenant_id", "bucket"), ("count",))
    with transaction.atomic():
        for model, rows in ((Metric, metrics), (MetricBucket, buckets), (TenantMetric, tenants),
                            (TenantMetricBucket, tenant_buckets)):  # fmt: skip
            model.objects.filter(period="h", start__gte=since).delete()
            model.objects.bulk_create(
                (model(period="h", start=row.pop("at"), **row) for row in rows), batch_size=2000
            )
    return len(metrics)


def prune(minute_days: int, hour_days: int) -> int:
    now = timezone.now()
    deleted = 0
    for period, days in (("m", minute_days), ("h", hour_days)):
        cutoff = now - timedelta(days=days)
        for model in (Metric, MetricBucket, TenantMetric, TenantMetricBucket):
            count, _ = model.objects.filter(period=period, start__lt=cutoff).delete()
            deleted += count
    return deleted


# --- reading series for charts -------------------------------------------------------------

RANGES = {
    # range: (span, step, period read)
    "1h": (timedelta(hours=1), timedelta(minutes=1), "m"),
    "24h": (timedelta(hours=24), timedelta(minutes=15), "m"),
    "7d": (timedelta(days=7), timedelta(hours=2), "h"),
    "30d": (timedelta(days=30), timedelta(hours=6), "h"),
}


@dataclass
class Point:
    start: datetime
    calls: int = 0
    errors: int = 0
    timeouts: int = 0
    cold_starts: int = 0
    counts: dict = field(default_factory=dict)

    def percentile(self, p: float) -> float | None:
        return percentile(self.counts, p)


def merged(points) -> dict[int, int]:
    """The duration histogram of several points together."""
    counts: dict[int, int] = defaultdict(int)
    for point in points:
        for b, c in point.counts.items():
            counts[b] += c
    return dict(counts)


def percentile(counts: dict[int, int], p: float) -> float | None:
    total = sum(counts.values())
    if not total:
        return None
    rank = p / 100 * total
    seen = 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= rank:
            return bucket_middle(b)
    return bucket_middle(max(counts))


def series(
    deployment_ids: list[int] | None,
    range_name: str,
    now: datetime | None = None,
    tenant_id: int | None = None,
) -> list[Point]:
    """One point per step over the range, for these deployments together (or, with
    `tenant_id`, all of the tenant's). Rows are added up by the database, a row per minute
    or hour, whatever the number of deployments and functions."""
    span, step, period = RANGES[range_name]
    now = now or timezone.now()
    start = now - span
    step_s = step.total_seconds()
    origin = datetime(2000, 1, 1, tzinfo=now.tzinfo)

    def slot(moment: datetime) -> datetime:
        offset = (moment - origin).total_seconds()
        return origin + timedelta(seconds=offset - offset % step_s)

    points = {}
    first = slot(start)
    moment = first
    while moment <= now:
        points[moment] = Point(moment)
        moment += step
    if tenant_id is not None:
        rows = TenantMetric.objects.filter(tenant_id=tenant_id)
        buckets = TenantMetricBucket.objects.filter(tenant_id=tenant_id)
    else:
        rows = Metric.objects.filter(deployment_id__in=deployment_ids)
        buckets = MetricBucket.objects.filter(deployment_id__in=deployment_ids)
    # Postgres adds the minutes up into the chart's steps itself (a hundred rows back instead
    # of 1,440 for a day); SQLite returns minutes and they are put in their step here.
    if connection.vendor == "postgresql":
        at = Func(
            Value(step),
            F("start"),
            Value(origin),
            function="date_bin",
            output_field=DateTimeField(),
        )
    else:
        at = F("start")
    rows = (
        rows.filter(period=period, start__gte=first)
        .values(at=at)
        .annotate(
            calls=Sum("calls"),
            errors=Sum("errors"),
            timeouts=Sum("timeouts"),
            cold_starts=Sum("cold_starts"),
        )
    )
    for row in rows:
        point = points.get(slot(row["at"]))
        if point is not None and row["calls"]:
            point.calls += row["calls"]
            point.errors += row["errors"]
            point.timeouts += row["timeouts"]
            point.cold_starts += row["cold_starts"]
    buckets = (
        buckets.filter(period=period, start__gte=first)
        .values("bucket", at=at)
        .annotate(total=Sum("count"))
    )
    for row in buckets:
        point = points.get(slot(row["at"]))
        if point is not None:
            point.counts[row["bucket"]] = point.counts.get(row["bucket"], 0) + row["total"]
    return list(points.values())
