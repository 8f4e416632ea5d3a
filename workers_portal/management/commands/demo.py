"""`manage.py demo`: a demo tenant with its owner and a sample worker, and an operator
account for the admin (idempotent). The owner is an ordinary user; the operator is staff."""

import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from deployments.deploy import deploy
from tenancy.models import Membership, Tenant
from workers.models import Worker
from workers.samples import SAMPLE_SOURCE


def operator_password(path: Path) -> str:
    """Chosen at random once, kept in var/ (readable by this account only)."""
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


class Command(BaseCommand):
    help = "Create the demo tenant, its owner, a sample worker and an operator account."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")
        parser.add_argument("--operator", default="operator")
        parser.add_argument(
            "--wait-ready",
            type=float,
            metavar="SECONDS",
            help="then wait up to SECONDS for the sample worker's build and say where it answers",
        )

    def handle(self, *args, **options):
        tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo tenant"})
        User = get_user_model()
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            user = User.objects.create_user(
                options["username"], f"{options['username']}@example.com", options["password"]
            )
        Membership.objects.get_or_create(
            user=user, tenant=tenant, defaults={"role": Membership.Role.OWNER}
        )
        password = operator_password(settings.VAR_DIR / "operator-password")
        operator = User.objects.filter(username=options["operator"]).first()
        if operator is None:
            User.objects.create_superuser(
                options["operator"], f"{options['operator']}@example.com", password
            )
        worker, created = Worker.objects.get_or_create(tenant=tenant, name="hello")
        if created:
            deploy(worker, SAMPLE_SOURCE, user)
        if options["wait_ready"]:
            self.wait_ready(worker, options["wait_ready"])
            return
        self.stdout.write(
            f"demo tenant: {tenant.slug}; owner: {user.username}; "
            f"operator: {options['operator']} / {password}"
        )

    def wait_ready(self, worker, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            latest = worker.latest_deployment()
            if latest is not None and latest.is_terminal:
                if latest.status == latest.Status.READY:
                    self.stdout.write(
                        f"The sample worker is ready: open /workers/{worker.code}/ in the portal "
                        f"to invoke it, or POST {latest.path_url}/api/invoke/hello with an API "
                        "key that has the invoke scope (it is private)."
                    )
                else:
                    self.stdout.write(f"The sample worker's build ended {latest.status}.")
                return
            time.sleep(0.5)
        self.stdout.write(f"The sample worker was not built within {seconds:.0f} s.")
