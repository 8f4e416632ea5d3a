"""Celery tasks of telemetry: retention, usage metering, metric roll-ups, log drains, events,
and mail to members about events."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from runs.models import Run
from tenancy.models import Tenant

from . import drains, metrics, notices, partitions, usage, webhooks
from .models import Invocation, LogEntry

PRUNE_BATCH = 5000


@shared_task(soft_time_limit=3000, time_limit=3600)
def prune_old_logs() -> int:
    """Lines and invocations past their tenant's retention go. On Postgres the coming days'
    partitions are made and whole days past the longest retention are dropped (a row lives
    its retention and at most a day more); what is left is deleted a small batch at a time,
    so no statement holds locks long enough to stall ingest."""
    partitions.ensure()
    now = timezone.now()
    longest = max(
        [settings.LOG_RETENTION_DAYS]
        + [t for t in Tenant.objects.values_list("log_retention_days", flat=True) if t]
    )
    deleted = len(partitions.drop_before(now - timedelta(days=longest)))
    for tenant in Tenant.objects.all():
        days = tenant.log_retention_days or settings.LOG_RETENTION_DAYS
        if partitions.enabled() and days == longest:
            continue  # whole days, dropped above; the DEFAULT partition's rows below
        cutoff = now - timedelta(days=days)
        for model, field in ((LogEntry, "timestamp"), (Invocation, "started_at")):
            old = model.objects.filter(tenant=tenant, **{f"{field}__lt": cutoff})
            while ids := list(old.values_list("id", flat=True)[:PRUNE_BATCH]):
                count, _ = model.objects.filter(id__in=ids).delete()
                deleted += count
    deleted += partitions.prune_default(now - timedelta(days=longest))
    # Ended runs (with their attempts) after RUN_RESULT_KEEP_DAYS; dead letters not
    # discarded stay until someone replays or discards them.
    cutoff = timezone.now() - timedelta(days=settings.RUN_RESULT_KEEP_DAYS)
    ended = Run.objects.filter(finished_at__lt=cutoff).exclude(
        status=Run.Status.DEAD, discarded_at=None
    )
    while ids := list(ended.values_list("id", flat=True)[:PRUNE_BATCH]):
        count, _ = Run.objects.filter(id__in=ids).delete()
        deleted += count
    deleted += usage.prune(settings.METRICS_HOUR_DAYS)
    deleted += webhooks.forget_old()
    return deleted + metrics.prune(settings.METRICS_MINUTE_DAYS, settings.METRICS_HOUR_DAYS)


@shared_task
def meter_usage() -> int:
    """Each tenant's usage of today and yesterday, recomputed (telemetry.usage)."""
    return usage.meter()


@shared_task
def roll_up_metrics() -> int:
    """The hours of the last two hours, recomputed from their minutes (telemetry.metrics)."""
    return metrics.roll_up_hours()


@shared_task
def deliver_log_drains() -> int:
    """A batch of lines to each tenant drain that is due (telemetry.drains)."""
    return drains.deliver_due()


@shared_task
def deliver_events() -> int:
    """An attempt of each event delivery that is due (telemetry.webhooks)."""
    return webhooks.deliver_due()


@shared_task
def mail_notices(tenant_id: int, event_type: str, data: dict, user_ids: list[int]) -> int:
    return notices.mail(tenant_id, event_type, data, user_ids)
