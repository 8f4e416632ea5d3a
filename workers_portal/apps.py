from django.apps import AppConfig


class WorkersPortalConfig(AppConfig):
    name = "workers_portal"
    verbose_name = "Platform"

    def ready(self):
        from . import startup  # noqa: F401 - registers the secret key check
