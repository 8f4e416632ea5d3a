"""Creating deployments: the row first, the build enqueued once the row is committed."""

from django.conf import settings
from django.db import transaction

from workers.models import Worker

from .models import Deployment


def deploy(worker: Worker, source: str, user=None, backend: str | None = None) -> Deployment:
    from .tasks import build_deployment

    with transaction.atomic():
        deployment = Deployment.objects.create(
            worker=worker,
            tenant=worker.tenant,
            source=source,
            created_by=user if user is not None and user.is_authenticated else None,
            backend=backend or settings.DEFAULT_BACKEND,
        )
        build_deployment.delay_on_commit(deployment.pk)
    return deployment
