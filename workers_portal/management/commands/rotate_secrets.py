"""`manage.py rotate_secrets`: re-encrypt every secret with the first of SECRETS_ENCRYPTION_KEYS."""

from django.core.management.base import BaseCommand
from django.db import transaction

from deployments.models import Deployment
from workers.models import WorkerSecret
from workers.secrets import rotate


class Command(BaseCommand):
    help = "Re-encrypt workers' secrets and deployments' snapshots with the newest key."

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
        self.stdout.write(f"re-encrypted {count} values")
