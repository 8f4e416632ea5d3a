"""The operators' home: staff who open the portal see the platform, not a dead end: its
health (runtime hosts, build queue, stuck builds, ingest lag, Celery and Redis), the tenants
that use it most, and what failed."""

import json
from datetime import timedelta

import redis
from celery import current_app as app
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Sum
from django.shortcuts import render
from django.utils import timezone

from deployments.announce import redis_client
from deployments.models import Deployment
from telemetry.models import Invocation, TenantMetric
from tenancy.models import Tenant

Status = Deployment.Status


@staff_member_required
def operators_home(request):
    now = timezone.now()
    day_ago = now - timedelta(days=1)
    tenants = Tenant.objects.annotate(
        worker_count=Count("workers", distinct=True),
        member_count=Count("memberships", distinct=True),
    ).order_by("name")
    waiting = Deployment.objects.filter(status__in=[Status.QUEUED, Status.BUILDING])
    oldest = waiting.order_by("created").values_list("created", flat=True).first()
    calls = TenantMetric.objects.filter(period="m", start__gte=day_ago).aggregate(
        total=Sum("calls"), failed=Sum("errors")
    )
    stuck_since = now - timedelta(seconds=settings.BUILD_DEADLINE_SECONDS)
    context = {
        "tenants": tenants,
        "suspended": tenants.filter(status=Tenant.Status.SUSPENDED).count(),
        "build_queue": waiting.count(),
        "oldest_build": oldest,
        "calls": {k: v or 0 for k, v in calls.items()},
        "stuck_builds": waiting.filter(updated__lt=stuck_since).select_related("worker", "tenant")[
            :20
        ],
        "hosts": runtime_hosts(),
        "redis_ok": redis_ok(),
        "celery_workers": celery_workers(),
        "ingest_lag": ingest_lag(now),
        "top_tenants": top_tenants(day_ago),
        "failed_builds": Deployment.objects.filter(status=Status.ERROR, created__gte=day_ago)
        .select_related("worker", "tenant")
        .order_by("-created")[:20],
    }
    return render(request, "operators.html", context)


def runtime_hosts() -> list[dict]:
    """The runtime host processes that reported in the last 15 s (their heartbeats)."""
    try:
        client = redis_client()
        keys = list(client.scan_iter("runtime:host:*", count=500))
        values = client.mget(keys) if keys else []
    except redis.RedisError:
        return []
    hosts = [json.loads(v) for v in values if v]
    for host in hosts:
        host["rss_mb"] = round(host.get("rssBytes", 0) / 2**20)
        host["up_minutes"] = round((host["at"] - host.get("startedAt", host["at"])) / 60000)
    return sorted(hosts, key=lambda h: (h.get("address", ""), h.get("pid", 0)))


def redis_ok() -> bool:
    try:
        return bool(redis_client().ping())
    except redis.RedisError:
        return False


def celery_workers() -> list[str]:
    """Celery workers that answer a ping within a second (an empty list: none is running)."""
    try:
        answers = app.control.inspect(timeout=1.0).ping() or {}
    except Exception:  # noqa: BLE001 - the broker is away: no worker can be reached either
        return []
    return sorted(answers)


def ingest_lag(now) -> dict | None:
    """How long a call's record takes to be stored after the call ended, over the newest
    calls of the last five minutes: {"p50", "max"} in seconds (None: no calls then)."""
    rows = (
        Invocation.objects.filter(created__gte=now - timedelta(minutes=5))
        .order_by("-id")
        .values_list("created", "started_at", "duration_ms")[:500]
    )
    lags = sorted(
        max(0.0, (created - started).total_seconds() - duration / 1000)
        for created, started, duration in rows
    )
    if not lags:
        return None
    return {"p50": lags[len(lags) // 2], "max": lags[-1], "calls": len(lags)}


def top_tenants(since) -> list[dict]:
    """The ten tenants with the most invocations since `since`, with errors and compute."""
    rows = (
        TenantMetric.objects.filter(period="m", start__gte=since)
        .values("tenant__slug", "tenant__name")
        .annotate(calls=Sum("calls"), errors=Sum("errors"), ms=Sum("duration_ms_sum"))
        .order_by("-calls")[:10]
    )
    return [{**r, "seconds": (r["ms"] or 0) / 1000} for r in rows]
