"""Workers' plain settings: named values shown to members (a feature flag, a public URL),
read by code as ctx.env.NAME and process.env.NAME beside the secrets. A name is a setting or
a secret, never both, so a program never wonders which one it reads."""

from django.db import transaction

from tenancy.quotas import check_room

from .models import Worker, WorkerSecret, WorkerSetting
from .secrets import NAME

MAX_VALUE = 4096


class SettingError(ValueError):
    """Why a setting cannot be set, for people."""


def set_setting(worker: Worker, name: str, value: str) -> WorkerSetting:
    """Raises SettingError, or QuotaExceeded for a new one over the tenant's quota."""
    if not NAME.match(name):
        raise SettingError(
            f"{name!r} cannot name a setting: capital letters, digits and _, starting with a "
            "letter or _ (at most 64)."
        )
    if len(value) > MAX_VALUE:
        raise SettingError(f"A setting's value holds at most {MAX_VALUE} characters.")
    if WorkerSecret.objects.filter(worker=worker, name=name).exists():
        raise SettingError(f"{name} is a secret of {worker.name}: remove the secret first.")
    with transaction.atomic():
        if not worker.plain_settings.filter(name=name).exists():
            check_room(worker.tenant, "max_settings")
        found, _ = WorkerSetting.objects.update_or_create(
            worker=worker, name=name, defaults={"value": value}
        )
    return found


def is_a_setting(worker: Worker, name: str) -> bool:
    return worker.plain_settings.filter(name=name).exists()
