from django.apps import AppConfig


class KvConfig(AppConfig):
    name = "kv"
    verbose_name = "Key-value storage"
    default_auto_field = "django.db.models.BigAutoField"
