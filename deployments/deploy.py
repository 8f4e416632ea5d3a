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
            backend=backend or settings.DEFAULT_BACKEND,
        )
        build_deployment.delay_on_commit(deployment.pk)
    return deployment
