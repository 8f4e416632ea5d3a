"""Creating deployments: the row first, the build enqueued once the row is committed."""

from django.conf import settings
from django.db import transaction

from workers.models import Worker
from workers.secrets import decrypt, seal
from workers_portal.quotas import check_deploy

from .models import Deployment


def snapshot_secrets(worker: Worker) -> str:
    values = {s.name: decrypt(s.value_encrypted) for s in worker.secrets.all()}
    return seal(values)


def deploy(worker: Worker, source: str, user=None, backend: str | None = None) -> Deployment:
    """A new deployment of `worker`, built once committed. Raises QuotaExceeded."""
    from .tasks import build_deployment

    check_deploy(worker.tenant)
    with transaction.atomic():
        deployment = Deployment.objects.create(
            worker=worker,
            tenant=worker.tenant,
            source=source,
            secrets_sealed=snapshot_secrets(worker),
            created_by=user if user is not None and user.is_authenticated else None,
            backend=backend or worker.tenant.backend or settings.DEFAULT_BACKEND,
        )
        build_deployment.delay_on_commit(deployment.pk)
    return deployment


def cancel(deployment: Deployment) -> bool:
    """Stop a build that has not ended; on a remote back end, cancel it there too. False if
    it had already ended (nothing to cancel)."""
    from .tasks import cancel_remote

    while not deployment.is_terminal:
        if deployment.transition(deployment.status, Deployment.Status.CANCELED):
            if deployment.backend != Deployment.Backend.LOCAL and deployment.deployment_id:
                cancel_remote.delay_on_commit(deployment.pk)
            # A remote build whose id is not saved yet is canceled by its submit task,
            # which finds the row canceled when it saves.
            return True
        deployment.refresh_from_db()  # it moved on meanwhile: look again
    return False
