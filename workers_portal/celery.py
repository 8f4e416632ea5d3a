"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workers_portal.settings")

app = Celery("workers_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def refuse_insecure_start(**kwargs):
    from django.core.exceptions import ImproperlyConfigured

    from .startup import require_secure_settings

    try:
        require_secure_settings()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"Refusing to start: {exc}") from exc  # Celery swallows Exceptions


@worker_process_init.connect
def warm_the_type_checker(**kwargs):
    """Each build process starts its type checker at once, in the background: the first
    deploy after a start does not wait about a second for the compiler to load."""
    from django.conf import settings

    if settings.BUILD_CHECKER_AT_START:
        from deployments import checker

        checker.prepare()
