"""A deployment deleted here (with its worker or its tenant) is deleted on its remote back
end too, once the delete has committed; a tenant's delete holds off its lines' ingest."""

from django.db import transaction
from django.db.models.signals import post_delete, pre_delete
from django.dispatch import receiver

from tenancy.models import Tenant

from .locks import lock_ingest
from .models import Deployment


@receiver(pre_delete, sender=Tenant)
def hold_off_ingest(sender, instance: Tenant, **kwargs):
    # As for a worker (deploy.delete_worker): no line lands between the cascade's look at
    # the tenant's rows and their delete. Inside the delete's transaction.
    lock_ingest([instance.pk])


@receiver(post_delete, sender=Deployment)
def delete_on_backend(sender, instance: Deployment, **kwargs):
    if not instance.runs_on.remote or not instance.backend_id:
        return
    from .tasks import delete_remote

    backend, ids = instance.backend, [instance.backend_id]
    transaction.on_commit(lambda: delete_remote.delay(backend, ids))
