"""`manage.py demo`: a demo tenant, a user to log in with, and a sample worker (idempotent)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from deployments.deploy import deploy
from workers.models import Worker
from workers.samples import SAMPLE_SOURCE
from workers_portal.models import Membership, Tenant


class Command(BaseCommand):
    help = "Create the demo tenant, user and sample worker if they do not exist."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")

    def handle(self, *args, **options):
        tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo tenant"})
        User = get_user_model()
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            user = User.objects.create_superuser(
                options["username"], f"{options['username']}@example.com", options["password"]
            )
        Membership.objects.get_or_create(
            user=user, tenant=tenant, defaults={"role": Membership.Role.OWNER}
        )
        worker, created = Worker.objects.get_or_create(tenant=tenant, name="hello")
        if created:
            deploy(worker, SAMPLE_SOURCE, user)
        self.stdout.write(f"demo tenant: {tenant.slug}; user: {user.username}")
