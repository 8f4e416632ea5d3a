"""Celery tasks: build deployments, and sweep the ones a crash left behind."""

import logging
import random
from datetime import timedelta
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .announce import announce, preload
from .backends import BuildFailed, TransientBackendError, get_backend
from .models import Artifact, Deployment
from .signals import deployment_ready
from .vercel_client import poll_delay

log = logging.getLogger(__name__)
Status = Deployment.Status


MAX_TRANSIENT_RETRIES = 8


def backoff(attempt: int) -> float:
    return min(300.0, 2.0**attempt) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.BUILD_TIMEOUT_SECONDS * 4,
    time_limit=settings.BUILD_TIMEOUT_SECONDS * 4 + 30,
    max_retries=MAX_TRANSIENT_RETRIES,
)
def build_deployment(self, deployment_pk: int) -> str | None:
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
    if backend.remote:
        return submit_remote(self, deployment, backend)
    try:
        result = backend.build(deployment, on_step=partial(show_step, deployment.pk))
    except BuildFailed as exc:
        return failed(deployment, exc)
    artifact = Artifact.store(result.artifact)
    # What the hosts need to load it goes on the row first (still building: nothing serves
    # it), and the hosts load it before anyone hears it is ready.
    loadable = Deployment.objects.filter(pk=deployment.pk, status=Status.BUILDING).update(
        artifact=artifact, functions=result.functions, http=result.http
    )
    if loadable:
        preload(deployment)
    # Ready and, if the worker auto-promotes, production in one commit: no one sees it ready
    # and not yet live.
    with transaction.atomic():
        ready = deployment.transition(
            Status.BUILDING,
            Status.READY,
            functions=result.functions,
            http=result.http,
            lockfile=result.lockfile,
            artifact=artifact,
            build_log="\n".join(result.log),
            backend_id=result.backend_id,
            backend_url=deployment.url,
        )
        if ready:
            deployment_ready.send(Deployment, deployment=deployment)
    if ready:
        # Runtime hosts fetch its code now, so its first call only starts the isolate.
        announce(deployment.host, deployment.worker.host)
    return Status.READY


def failed(deployment: Deployment, exc: BuildFailed) -> str:
    """The tenant's code cannot be built: the message and the log so far go on the row."""
    deployment.transition(
        Status.BUILDING,
        Status.ERROR,
        error_message=exc.message,
        build_log=exc.log,
        diagnostics=exc.diagnostics,
    )
    return Status.ERROR


def submit_remote(task, deployment: Deployment, backend) -> str | None:
    """Hand the build to a remote back end, save its id at once, then poll it."""
    if not deployment.backend_id:
        try:
            submitted = backend.submit(deployment)
        except BuildFailed as exc:
            return failed(deployment, exc)
        except TransientBackendError as exc:
            return retry_transient(task, deployment, exc)
        saved = Deployment.objects.filter(pk=deployment.pk, status=Status.BUILDING).update(
            backend_id=submitted.backend_id,
            backend_url=f"https://{submitted.url}",
            backend_state=submitted.state,
            functions=submitted.functions,
            http=submitted.http,
            lockfile=submitted.lockfile,
            invoke_secret_required=submitted.secret_required,
            build_log="\n".join(submitted.log),
            updated=timezone.now(),
        )
        if not saved:  # canceled while we were submitting: cancel it there too
            deployment.backend_id = submitted.backend_id
            cancel_remote.delay(deployment.pk)
            return None
    poll_deployment.apply_async((deployment.pk,), countdown=1)
    return "submitted"


def retry_transient(task, deployment: Deployment, exc: TransientBackendError):
    """A rate limit is waited out as told, without spending a retry; other transient errors
    are retried with backoff, and end the build with the reason once retries run out."""
    if exc.retry_after is not None:
        log.info("Deployment %s: rate limited, waiting %.1f s", deployment.pk, exc.retry_after)
        task.apply_async((deployment.pk,), countdown=exc.retry_after + 0.1)
        return "waiting"
    if task.request.retries >= MAX_TRANSIENT_RETRIES:
        message = f"The back end kept failing ({task.request.retries + 1} attempts): {exc}"
        deployment.transition(Status.BUILDING, Status.ERROR, error_message=message)
        return Status.ERROR
    raise task.retry(countdown=backoff(task.request.retries), exc=exc)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def poll_deployment(deployment_pk: int, failures: int = 0) -> str | None:
    """Follow a remote build until it ends, at the cadence of Vercel's own CLI. Each poll
    touches `updated`, so the sweep only picks up a build whose polling stopped."""
    deployment = (
        Deployment.objects.select_related("worker", "tenant").filter(pk=deployment_pk).first()
    )
    if deployment is None or deployment.is_terminal or not deployment.backend_id:
        return None
    backend = get_backend(deployment.backend)
    elapsed = (timezone.now() - (deployment.started_at or deployment.created)).total_seconds()
    try:
        polled = backend.poll(deployment)
    except TransientBackendError as exc:
        if exc.retry_after is not None:  # rate limited: wait as told, not a failure
            poll_deployment.apply_async((deployment_pk, failures), countdown=exc.retry_after + 0.1)
            return "waiting"
        if failures + 1 >= settings.VERCEL_POLL_MAX_FAILURES:
            message = f"Lost track of the build: {failures + 1} status checks failed, the last with: {exc}"
            deployment.transition(Status.BUILDING, Status.ERROR, error_message=message)
            return Status.ERROR
        poll_deployment.apply_async((deployment_pk, failures + 1), countdown=backoff(failures + 1))
        return "retrying"
    except BuildFailed as exc:
        deployment.transition(Status.BUILDING, Status.ERROR, error_message=exc.message)
        return Status.ERROR
    fields = {"backend_state": polled.state, "backend_url": f"https://{polled.url}"}
    if polled.log:
        fields["build_log"] = with_remote_log(deployment.build_log, polled.log)
    if polled.ready:
        try:
            backend.assign_address(deployment)  # its address before anyone is shown it
        except TransientBackendError as exc:
            wait = exc.retry_after if exc.retry_after is not None else backoff(failures + 1)
            poll_deployment.apply_async((deployment_pk, failures + 1), countdown=wait + 0.1)
            return "retrying"
        except BuildFailed as exc:
            message = f"Built, but it could not be given its address: {exc.message}"
            deployment.transition(Status.BUILDING, Status.ERROR, error_message=message, **fields)
            return Status.ERROR
        with transaction.atomic():
            if deployment.transition(Status.BUILDING, Status.READY, **fields):
                deployment_ready.send(Deployment, deployment=deployment)
        return Status.READY
    if polled.canceled:
        deployment.transition(Status.BUILDING, Status.CANCELED, **fields)
        return Status.CANCELED
    if polled.failed:
        deployment.transition(
            Status.BUILDING, Status.ERROR, error_message=polled.error_message, **fields
        )
        return Status.ERROR
    if elapsed > settings.VERCEL_BUILD_DEADLINE_SECONDS:
        message = f"The build did not finish within {settings.VERCEL_BUILD_DEADLINE_SECONDS // 60} minutes; it was canceled."
        if deployment.transition(Status.BUILDING, Status.ERROR, error_message=message, **fields):
            cancel_remote.delay(deployment.pk)
        return Status.ERROR
    # Still building (or in a state we do not know yet): show progress, look again later.
    Deployment.objects.filter(pk=deployment.pk, status=Status.BUILDING).update(
        updated=timezone.now(), **fields
    )
    poll_deployment.apply_async((deployment_pk, 0), countdown=poll_delay(elapsed))
    return "building"


REMOTE_LOG_MARK = "\n-> Build on the back end\n"


def show_step(deployment_pk: int, title: str) -> None:
    """What the build does now, for the API, the CLI and the portal while it runs."""
    building = Deployment.objects.filter(pk=deployment_pk, status=Status.BUILDING)
    building.update(backend_state=title[:100])


def with_remote_log(build_log: str, remote: str) -> str:
    """Our own steps' log, then the back end's build output (each poll brings all of it)."""
    return build_log.split(REMOTE_LOG_MARK)[0] + REMOTE_LOG_MARK + remote


@shared_task(bind=True, max_retries=MAX_TRANSIENT_RETRIES)
def cancel_remote(self, deployment_pk: int) -> None:
    deployment = Deployment.objects.filter(pk=deployment_pk).first()
    if deployment is None or not deployment.backend_id:
        return
    try:
        get_backend(deployment.backend).cancel(deployment)
    except TransientBackendError as exc:
        raise self.retry(
            countdown=exc.retry_after or backoff(self.request.retries), exc=exc
        ) from exc
    except BuildFailed as exc:  # e.g. it finished meanwhile: nothing left to cancel
        log.info("Cancel of %s on the back end: %s", deployment_pk, exc.message)


@shared_task(bind=True, max_retries=MAX_TRANSIENT_RETRIES)
def delete_remote(self, backend: str, backend_ids: list[str]) -> int:
    """Delete a deleted worker's deployments on their back end (the rows are gone already)."""
    remote = get_backend(backend)
    for position, backend_id in enumerate(backend_ids):
        try:
            remote.delete(backend_id)
        except TransientBackendError as exc:
            countdown = exc.retry_after or backoff(self.request.retries)
            raise self.retry(
                args=(backend, backend_ids[position:]), countdown=countdown, exc=exc
            ) from exc
    return len(backend_ids)


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
