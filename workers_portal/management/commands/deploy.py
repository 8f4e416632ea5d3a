"""`manage.py deploy <tenant> <worker> <file.ts | directory | file.tar.gz> [--wait]`: deploy
from scripts and CI."""

import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from functions_cli.pack import PackError, read_folder

from deployments.deploy import deploy
from deployments.models import Deployment
from deployments.program import (
    Program,
    ProgramError,
    program_from_archive,
    program_from_files,
)
from tenancy.models import Tenant, label_validator
from tenancy.quotas import QuotaExceeded, check_new_worker
from workers.models import Worker


class Command(BaseCommand):
    help = (
        "Deploy a TypeScript module, a directory or a .tar.gz as a new deployment of a worker "
        "(created if needed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("worker", help="the worker's name")
        parser.add_argument(
            "file",
            help="the TypeScript module, a directory of the worker's files, a .tar.gz or .zip of "
            "one, or - for one module on standard input",
        )
        parser.add_argument("--entry", help="the entry module (default: index.ts)")
        parser.add_argument(
            "--update-lock",
            action="store_true",
            help="resolve packages afresh instead of keeping the versions production pinned",
        )
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
        try:
            program = self.read_program(options["file"], options["entry"])
        except ProgramError as exc:
            raise CommandError(str(exc)) from exc
        try:
            worker = Worker.objects.filter(tenant=tenant, name=name).first()
            created = worker is None
            if created:
                check_new_worker(tenant)
                worker = Worker.objects.create(tenant=tenant, name=name)
            deployment = deploy(
                worker, program, backend=options["backend"], update_lock=options["update_lock"]
            )
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
        self.stdout.write(f"functions: {', '.join(deployment.functions) or 'none'}")
        if deployment.http:
            self.stdout.write("fetch handler: every path but /api/invoke/*")
        if deployment.packages:
            pinned = ", ".join(f"{p['name']}@{p['version']}" for p in deployment.packages)
            self.stdout.write(f"packages: {pinned}")

    def read_program(self, path: str, entry: str | None) -> Program:
        import sys

        if path == "-":
            source = sys.stdin.read()
            if not source.strip():
                raise CommandError("The module is empty.")
            return program_from_files({entry or "index.ts": source}, entry)
        given = Path(path)
        if given.is_dir():
            return program_from_files(read_directory(given), entry)
        if not given.is_file():
            raise CommandError(f"No such file or directory: {path}")
        if given.name.endswith((".tar.gz", ".tgz", ".zip")):
            return program_from_archive(given.read_bytes(), entry)
        source = given.read_text()
        if not source.strip():
            raise CommandError("The module is empty.")
        return program_from_files({entry or "index.ts": source}, entry)


def read_directory(root: Path) -> dict[str, str]:
    """The folder's program files, read as the CLI reads them (functions_cli.pack)."""
    try:
        return read_folder(root, settings.MAX_PROGRAM_FILES)
    except PackError as exc:
        raise CommandError(str(exc)) from exc
