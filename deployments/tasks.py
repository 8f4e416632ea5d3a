"""Celery tasks: build deployments, and sweep the ones a crash left behind."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .backends import BuildFailed, TransientBackendError, get_backend
from .models import Artifact, Deployment, Invocation, LogEntry

log = logging.getLogger(__name__)
Status = Deployment.Status


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.BUILD_TIMEOUT_SECONDS * 4,
    time_limit=settings.BUILD_TIMEOUT_SECONDS * 4 + 30,
    autoretry_for=(TransientBackendError,),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def build_deployment(deployment_pk: int) -> str | None:
    """Build one deployment. Safe to run twice: only one run's result is recorded."""
    deployment = (
        Deployment.objects.select_related("worker", "tenant").filter(pk=deployment_pk).first()
    )
    if deployment is None or deployment.is_terminal:
        return None
    if deployment.status == Status.QUEUED:
        started = deployment.transition(
            Status.QUEUED,
            Status.BUILDING,
            started_at=timezone.now(),
            build_attempts=F("build_attempts") + 1,
        )
        if not started:  # another run moved it on first; let that run finish it
            return None
    # A deployment already BUILDING is rebuilt: its earlier run died (redelivery after a
    # crash). Builds are deterministic, and the compare-and-swap below records one result.
    backend = get_backend(deployment.backend)
    try:
        result = backend.build(deployment)
    except BuildFailed as exc:
        deployment.transition(
            Status.BUILDING, Status.ERROR, error_message=exc.message, build_log=exc.log
        )
        return Status.ERROR
    artifact = Artifact.store(result.artifact)
    ready = deployment.transition(
        Status.BUILDING,
        Status.READY,
        functions=result.functions,
        artifact=artifact,
        build_log="\n".join(result.log),
        deployment_id=result.deployment_id,
        deployment_url=deployment.url,
    )
    if ready:
        deployment.worker.promote(deployment)
    return Status.READY


@shared_task
def sweep_stuck_deployments() -> dict[str, int]:
    """Re-enqueue builds whose worker died or whose message was lost; give up after a cap."""
    cutoff = timezone.now() - timedelta(seconds=settings.BUILD_DEADLINE_SECONDS)
    counts = {"requeued": 0, "failed": 0}
    stuck = Deployment.objects.filter(
        status__in=[Status.QUEUED, Status.BUILDING], updated__lt=cutoff
    )
    for deployment in stuck:
        if deployment.build_attempts >= settings.BUILD_MAX_ATTEMPTS:
            message = (
                f"The build did not finish after {deployment.build_attempts} attempts "
                "(the build process stopped each time). Deploy again; if it keeps failing, "
                "contact support."
            )
            if deployment.transition(deployment.status, Status.ERROR, error_message=message):
                counts["failed"] += 1
            continue
        # Back to QUEUED (a fresh `updated`), so the next sweep waits a full deadline again.
        if deployment.transition(deployment.status, Status.QUEUED):
            log.warning("Re-enqueueing stuck deployment %s", deployment.pk)
            build_deployment.delay(deployment.pk)
            counts["requeued"] += 1
    return counts


PRUNE_BATCH = 5000


@shared_task(soft_time_limit=3000, time_limit=3600)
def prune_old_logs() -> int:
    """Delete lines and invocations past each tenant's retention, a small batch at a time, so
    no statement holds locks long enough to stall ingest."""
    from workers_portal.models import Tenant

    deleted = 0
    for tenant in Tenant.objects.all():
        days = tenant.log_retention_days or settings.LOG_RETENTION_DAYS
        cutoff = timezone.now() - timedelta(days=days)
        for model, field in ((LogEntry, "timestamp"), (Invocation, "started_at")):
            old = model.objects.filter(tenant=tenant, **{f"{field}__lt": cutoff})
            while ids := list(old.values_list("id", flat=True)[:PRUNE_BATCH]):
                count, _ = model.objects.filter(id__in=ids).delete()
                deleted += count
    return deleted
