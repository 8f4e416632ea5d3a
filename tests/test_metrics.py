"""Per-minute figures added up as invocations arrive (both ingest paths), never counted twice,
rolled into hours, read as series with percentiles; and the charts drawn from them."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from telemetry.ingest import _store_runtime_batch, store_runtime_batch
from telemetry.metrics import (
    bucket,
    bucket_middle,
    merged,
    percentile,
    roll_up_hours,
    series,
)
from telemetry.models import Metric, TenantMetric

from .conftest import client_for
from .helpers import GREETER, create_deployment

MINUTE = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def batch(deployment, n: int, start=MINUTE, prefix="r", fail_every=0, ms=lambda k: 10.0):
    return {
        "invocations": [
            {
                "requestId": f"{prefix}{k}",
                "deploymentId": str(deployment.code),
                "function": "hello",
                "trigger": "http",
                "status": "error" if fail_every and k % fail_every == 0 else "ok",
                "statusCode": 500 if fail_every and k % fail_every == 0 else 200,
                "durationMs": ms(k),
                "startedAt": (start + timedelta(seconds=k % 60)).isoformat(),
                "cold": k == 0,
                "lines": 2,
            }  # fmt: skip
            for k in range(n)
        ],
        "logs": [],
    }


def test_buckets_are_a_quarter_wide_and_percentiles_land_within_them():
    assert bucket(0) == 0 and bucket(10**9) == 63
    for ms in (0.5, 3, 12, 250, 4000, 60000):
        assert abs(bucket_middle(bucket(ms)) - ms) / ms < 0.13
    counts = {bucket(ms): 0 for ms in (10, 100)}
    counts[bucket(10)] += 95
    counts[bucket(100)] += 5
    assert abs(percentile(counts, 50) - 10) < 1.3 and abs(percentile(counts, 99) - 100) < 13


def test_ingest_adds_up_minutes_once_on_postgres_and_on_the_row_by_row_path(worker):
    deployment = create_deployment(worker, GREETER)
    body = batch(deployment, 40, fail_every=4, ms=lambda k: 5.0 if k < 30 else 500.0)
    store_runtime_batch(json.dumps(body).encode())
    store_runtime_batch(json.dumps(body).encode())  # re-sent: nothing counts twice
    [row] = Metric.objects.filter(period="m")
    assert (row.calls, row.errors, row.cold_starts, row.start) == (40, 10, 1, MINUTE)
    assert abs(row.duration_ms_sum - (30 * 5 + 10 * 500)) < 1e-6
    # The path SQLite takes gives the same figures.
    _store_runtime_batch(batch(deployment, 20, start=MINUTE + timedelta(minutes=1), prefix="s"))
    _store_runtime_batch(batch(deployment, 20, start=MINUTE + timedelta(minutes=1), prefix="s"))
    second = Metric.objects.get(period="m", start=MINUTE + timedelta(minutes=1))
    assert second.calls == 20 and second.errors == 0 and second.cold_starts == 1
    # Lines count in their minute too (bytes of UTF-8), once, on both paths.
    for store, minutes in ((store_runtime_batch, 2), (_store_runtime_batch, 3)):
        at = MINUTE + timedelta(minutes=minutes)
        lines = {"logs": [{"requestId": f"l{minutes}", "deploymentId": str(deployment.code),
                           "seq": n, "function": "hello", "timestamp": at.isoformat(),
                           "level": "log", "message": "héllo"} for n in range(3)]}  # fmt: skip
        for _ in range(2):
            store(json.dumps(lines).encode() if store is store_runtime_batch else lines)
        row = Metric.objects.get(period="m", start=at)
        assert (row.calls, row.log_lines, row.log_bytes) == (0, 3, 18)

    points = series([deployment.pk], "1h", now=MINUTE + timedelta(minutes=30))
    by_start = {p.start: p for p in points}
    assert by_start[MINUTE].calls == 40 and by_start[MINUTE].errors == 10
    assert abs(by_start[MINUTE].percentile(50) - 5) < 0.7
    assert abs(by_start[MINUTE].percentile(95) - 500) < 65
    assert roll_up_hours(since=MINUTE) == 1
    hour = Metric.objects.get(period="h")
    assert (hour.calls, hour.errors, hour.cold_starts, hour.start) == (60, 10, 2, MINUTE)
    # The tenant's own minutes (its dashboard's chart) say the same, on both paths.
    tenant_minutes = {t.start: t for t in TenantMetric.objects.filter(period="m")}
    assert (tenant_minutes[MINUTE].calls, tenant_minutes[MINUTE].errors) == (40, 10)
    assert tenant_minutes[MINUTE + timedelta(minutes=1)].calls == 20
    tenant_hour = TenantMetric.objects.get(period="h")
    assert (tenant_hour.calls, tenant_hour.errors, tenant_hour.cold_starts) == (60, 10, 2)
    day = series(None, "24h", now=MINUTE + timedelta(minutes=30), tenant_id=worker.tenant_id)
    assert sum(p.calls for p in day) == 60
    assert abs(percentile(merged(day), 50) - 5) < 0.7
    assert roll_up_hours(since=MINUTE) == 1 and Metric.objects.filter(period="h").count() == 1
    week = series([deployment.pk], "7d", now=MINUTE + timedelta(hours=3))
    assert sum(p.calls for p in week) == 60


def test_charts_render_in_one_request_with_a_range_picker_and_are_scoped(
    owner_client, worker, outsider
):
    from django.utils import timezone

    deployment = create_deployment(worker, GREETER)
    now = timezone.now().replace(second=0, microsecond=0)
    store_runtime_batch(json.dumps(batch(deployment, 30, start=now - timedelta(minutes=5),
                                         fail_every=3)).encode())  # fmt: skip
    url = reverse("worker-chart", args=[worker.code]) + "?range=1h"
    chart = owner_client.get(url, HTTP_HX_REQUEST="true")
    text = chart.content.decode()
    assert chart.status_code == 200 and "<svg" in text and 'hx-trigger="every 30s"' in text
    assert "30 calls" in text and "10 errors" in text and "p95" in text
    for name in ("1h", "24h", "7d", "30d"):
        assert f"range={name}" in text
    assert (
        owner_client.get(reverse("worker-chart", args=[worker.code]) + "?range=7d").status_code
        == 200
    )
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "<svg" in page  # on the Overview, drawn with the page
    detail = owner_client.get(reverse("deployment", args=[deployment.code])).content.decode()
    assert "<svg" in detail
    dashboard = owner_client.get(reverse("dashboard")).content.decode()
    assert "<svg" in dashboard
    other = client_for(Client, outsider)
    assert other.get(url).status_code == 404
    assert other.get(reverse("deployment-chart", args=[deployment.code])).status_code == 404
    assert settings.METRICS_MINUTE_DAYS == 14 and settings.METRICS_HOUR_DAYS == 396


def test_usage_per_day_is_metered_shown_to_owners_exported_and_kept_past_the_logs(
    owner_client, worker, tenant, developer, client, settings
):
    from django.utils import timezone

    from deployments.models import Deployment
    from runs.models import Run
    from telemetry.models import LogEntry, UsageDay
    from telemetry.tasks import meter_usage, prune_old_logs
    from workers.api_keys import issue_key

    Worker = type(worker)
    Worker.objects.filter(pk=worker.pk).update(memory_mb=512)
    deployment = create_deployment(worker, GREETER)
    now = timezone.now().replace(second=0, microsecond=0)
    body = batch(deployment, 40, start=now - timedelta(minutes=2), ms=lambda k: 250.0)
    body["logs"] = [{"requestId": "r1", "deploymentId": str(deployment.code), "seq": n,
                     "function": "hello", "timestamp": now.isoformat(), "level": "log",
                     "message": "x" * 10} for n in range(5)]  # fmt: skip
    store_runtime_batch(json.dumps(body).encode())
    Deployment.objects.filter(pk=deployment.pk).update(
        status="ready",
        started_at=now - timedelta(seconds=90),
        finished_at=now - timedelta(seconds=30),
    )
    Run.objects.create(tenant=tenant, worker=worker, deployment=deployment, function="hello")
    assert meter_usage() >= 1
    day = UsageDay.objects.get(tenant=tenant, day=now.date())
    assert (day.invocations, day.log_lines, day.log_bytes, day.runs) == (40, 5, 50, 1)
    assert abs(day.gb_seconds - 40 * 0.25 * 0.5) < 1e-6  # 40 calls x 250 ms x 0.5 GB
    assert abs(day.build_seconds - 60) < 1e-6
    assert meter_usage() >= 1 and UsageDay.objects.count() == 1  # recomputed, not added

    page = owner_client.get(reverse("usage")).content.decode()
    assert "40" in page and "5.000" in page
    metered = timezone.localtime(UsageDay.objects.get().updated).strftime("%H:%M:%S")
    assert "as of <time" in page and metered in page  # how fresh the figures are
    exported = owner_client.get(reverse("usage") + "?format=csv").content.decode().splitlines()
    assert exported[0].startswith("day,invocations,gb_seconds")
    assert exported[1].startswith(f"{now.date().isoformat()},40,5.0,60.0,5,50,1")
    assert client_for(Client, developer).get(reverse("usage")).status_code == 403
    key = issue_key(tenant, "billing", ["read"])[1]
    api = client.get("/api/usage", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert api["days"][0]["invocations"] == 40 and api["days"][0]["gbSeconds"] == 5.0
    # Raw lines go with the log retention; the day's usage stays.
    LogEntry.objects.update(timestamp=now - timedelta(days=settings.LOG_RETENTION_DAYS + 1))
    prune_old_logs()
    assert not LogEntry.objects.exists() and UsageDay.objects.get().log_lines == 5


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_runtime_reports_cold_starts_and_line_counts(runtime, tenant):
    import httpx

    from telemetry.models import Invocation
    from workers.models import Worker

    from .conftest import wait_for
    from .helpers import build_now

    worker = Worker.objects.create(tenant=tenant, name="coldness", public=True)
    deployment = build_now(worker, GREETER)
    url = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/hello"
    ids = [httpx.post(url, json={"name": n}, timeout=30).json()["requestId"] for n in "ab"]
    wait_for(lambda: Invocation.objects.filter(request_id__in=ids).count() == 2, 10, "them")
    first, second = (Invocation.objects.get(request_id=i) for i in ids)
    assert (first.cold, second.cold) == (True, False)
    assert first.lines == second.lines == 2  # GREETER prints two lines
    assert Metric.objects.get(deployment=deployment, period="m").cold_starts == 1


def test_charts_speak_the_users_zone_have_axes_and_start_near_a_young_workers_first_call(
    owner_client, worker
):
    from django.utils import timezone

    deployment = create_deployment(worker, GREETER)
    now = timezone.now().replace(second=0, microsecond=0)
    store_runtime_batch(
        json.dumps(batch(deployment, 12, start=now - timedelta(minutes=2))).encode()
    )
    owner_client.post(reverse("time-zone"), {"time_zone": "Europe/Berlin"})
    url = reverse("worker-chart", args=[worker.code]) + "?range=24h"
    text = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    # The caption and every hover title in the chosen zone, named; none in UTC.
    assert "UTC" not in text and ("CET" in text or "CEST" in text)
    # Axes: the scale's top and zero beside each chart, times under them.
    assert text.count('class="y-axis"') == 2 and 'class="x-axis muted"' in text
    # A day-long range of a worker whose first calls were minutes ago starts shortly before
    # them: 12 intervals of 15 minutes, not 96 with one bar at the end.
    assert text.count('<rect class="ok"') == 12
    # The latency of each interval that had calls is a visible dot, and its figures are one
    # pointer away.
    assert 'class="dot p50"' in text and "p50 " in text.split('<rect class="hit"')[-2]


def test_the_overview_says_how_fresh_its_figures_are_and_the_last_call_to_the_second(
    owner_client, worker
):
    """The health panel's figures are counted as calls arrive and the panel asks again
    every 30 s; it says as of when, and the last call is exact (not its minute), so it never
    reads as earlier than "Serves ... since" a few seconds before it."""
    from django.utils import timezone

    deployment = create_deployment(worker, GREETER)
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=3)
    # 48 calls, the last at 47 s past the minute, then a minute with only log lines.
    store_runtime_batch(json.dumps(batch(deployment, 48, start=minute)).encode())
    lines = {"logs": [{"requestId": "late", "deploymentId": str(deployment.code), "seq": 0,
                       "function": "hello", "level": "log", "message": "after",
                       "timestamp": (minute + timedelta(minutes=1)).isoformat()}]}  # fmt: skip
    store_runtime_batch(json.dumps(lines).encode())
    url = reverse("worker-health", args=[worker.code])
    text = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    last = timezone.localtime(minute + timedelta(seconds=47)).strftime("%Y-%m-%d %H:%M:%S")
    shown = text[text.index("Last call") :]
    assert last in shown.split("</dd>")[0]
    assert "<dd>48</dd>" in text
    assert "as of <time" in text and 'hx-trigger="every 30s"' in text
    # The worker page carries the same panel.
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert last in page
