"""Checks every serving process makes before it starts (web, worker, beat, runtime)."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

INSECURE_KEY_MESSAGE = (
    "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
    "string (or DEBUG=1 for a development run)."
)


def require_secure_settings() -> None:
    if settings.INSECURE_SECRET_KEY:
        raise ImproperlyConfigured(INSECURE_KEY_MESSAGE)


@register(Tags.security, deploy=True)
def secret_key_check(app_configs, **kwargs):
    """`manage.py check --deploy` says it too; plain commands (makemigrations) need no key."""
    if settings.INSECURE_SECRET_KEY:
        return [Error(INSECURE_KEY_MESSAGE, id="workers_portal.E001")]
    return []
