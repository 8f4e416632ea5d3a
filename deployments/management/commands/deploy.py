"""`manage.py deploy <tenant> <worker> <file.ts> [--wait]`: deploy from scripts and CI."""

import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from deployments.deploy import deploy
from deployments.models import Deployment
from workers.models import Worker
from workers_portal.models import Tenant, label_validator
from workers_portal.quotas import QuotaExceeded, check_new_worker


class Command(BaseCommand):
    help = "Deploy a TypeScript module as a new deployment of a worker (created if needed)."

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("worker", help="the worker's name")
        parser.add_argument("file", help="the TypeScript module, or - for standard input")
        parser.add_argument("--wait", action="store_true", help="wait until the build ends")
        parser.add_argument("--timeout", type=float, default=300, help="seconds --wait waits")
        parser.add_argument(
            "--backend",
            choices=[choice.value for choice in Deployment.Backend],
            help="where this deployment runs (default: the tenant's back end)",
        )

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {options['tenant']!r}.")
        name = options["worker"]
        try:
            label_validator(name)
        except ValidationError as exc:
            raise CommandError(f"Invalid worker name {name!r}: {exc.messages[0]}") from exc
        source = self.read_source(options["file"])
        try:
            worker = Worker.objects.filter(tenant=tenant, name=name).first()
            created = worker is None
            if created:
                check_new_worker(tenant)
                worker = Worker.objects.create(tenant=tenant, name=name)
            deployment = deploy(worker, source, backend=options["backend"])
        except QuotaExceeded as exc:
            raise CommandError(exc.message) from exc
        verb = "Created worker and queued" if created else "Queued"
        self.stdout.write(f"{verb} deployment {deployment.short_id} of {tenant.slug}/{name}")
        if not options["wait"]:
            self.stdout.write(f"status: {deployment.status}")
            return
        deadline = time.monotonic() + options["timeout"]
        while not deployment.is_terminal:
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Gave up waiting after {options['timeout']:.0f} s; status: {deployment.status}. "
                    "Is a Celery worker running?"
                )
            time.sleep(0.25)
            deployment.refresh_from_db()
        self.stdout.write(f"status: {deployment.status}")
        if deployment.status != Deployment.Status.READY:
            raise CommandError(f"The build failed:\n{deployment.error_message}")
        self.stdout.write(f"url: {deployment.url}")
        self.stdout.write(f"functions: {', '.join(deployment.functions)}")

    def read_source(self, path: str) -> str:
        import sys

        if path == "-":
            source = sys.stdin.read()
        else:
            file = Path(path)
            if not file.is_file():
                raise CommandError(f"No such file: {path}")
            source = file.read_text()
        if not source.strip():
            raise CommandError("The module is empty.")
        if len(source.encode()) > settings.MAX_SOURCE_BYTES:
            raise CommandError(f"The module is larger than {settings.MAX_SOURCE_BYTES} bytes.")
        return source
