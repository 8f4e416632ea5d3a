"""`manage.py rotate_secrets`: re-encrypt every secret with the first of SECRETS_ENCRYPTION_KEYS
(workers' secrets, deployments' snapshots of them, tenants' single sign-on client secrets)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from deployments.models import Deployment
from sso.models import SingleSignOn
from workers.models import WorkerSecret
from workers.secrets import rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt workers' secrets, their snapshots and SSO client secrets with the newest key."
    )

    def handle(self, *args, **options):
        count = 0
        with transaction.atomic():
            for secret in WorkerSecret.objects.select_for_update():
                secret.value_encrypted = rotate(secret.value_encrypted)
                secret.save(update_fields=["value_encrypted"])
                count += 1
            for deployment in Deployment.objects.exclude(secrets_sealed="").select_for_update():
                Deployment.objects.filter(pk=deployment.pk).update(
                    secrets_sealed=rotate(deployment.secrets_sealed)
                )
                count += 1
            for sso in SingleSignOn.objects.select_for_update():
                SingleSignOn.objects.filter(pk=sso.pk).update(
                    client_secret=rotate(sso.client_secret)
                )
                count += 1
        self.stdout.write(f"re-encrypted {count} values")
