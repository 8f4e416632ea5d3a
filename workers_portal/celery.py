"""The Celery app: configured from Django settings (CELERY_*), tasks found in each app."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init

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
