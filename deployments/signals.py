"""A deployment deleted here (with its worker, or by an operator) is deleted on its remote
back end too, once the delete has committed."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Deployment


@receiver(post_delete, sender=Deployment)
def delete_on_backend(sender, instance: Deployment, **kwargs):
    if not instance.runs_on.remote or not instance.deployment_id:
        return
    from .tasks import delete_remote

    backend, ids = instance.backend, [instance.deployment_id]
    transaction.on_commit(lambda: delete_remote.delay(backend, ids))
