from django.apps import AppConfig


class WorkersPortalConfig(AppConfig):
    name = "workers_portal"
    verbose_name = "Tenancy"
