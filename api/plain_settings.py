"""A worker's plain settings over the API: names and values (shown: nothing secret belongs
here), set and removed as in the portal (the `manage` scope to change, `read` to see),
audited, within the tenant's quota."""

from datetime import datetime
from uuid import UUID

from django.http import HttpResponse
from ninja import Field, Path, Router, Schema

from deployments.deploy import settings_changed_since
from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded
from workers.models import WorkerSetting
from workers.plain_settings import MAX_VALUE, SettingError, set_setting
from workers.secrets import NAME

from .errors import ApiError
from .schemas import ErrorOut, Strict
from .workers import worker_for

router = Router(tags=["settings"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
SettingName = Path(
    ...,
    pattern=NAME.pattern,
    description="Capital letters, digits and _, starting with a letter or _ (at most 64).",
)


class SettingOut(Schema):
    name: str
    value: str
    updatedAt: datetime
    pendingInProduction: bool = Field(
        description="Set or changed after production's deploy: production runs with its old "
        "value (or without it) until the next deploy."
    )


class SettingList(Schema):
    settings: list[SettingOut]
    removedPendingInProduction: list[str] = Field(
        description="Removed after production's deploy: production still has them."
    )


class SettingIn(Strict):
    value: str = Field(max_length=MAX_VALUE, description="Shown to every member of the tenant.")


def setting_json(s: WorkerSetting, pending: set[str]) -> dict:
    return {
        "name": s.name, "value": s.value, "updatedAt": s.updated,
        "pendingInProduction": s.name in pending,
    }  # fmt: skip


@router.get(
    "/workers/{uuid:id}/settings",
    response={200: SettingList, **ERRORS},
    summary="A worker's plain settings, with their values",
)
def list_settings(request, id: UUID):
    worker = worker_for(request, id, Action.READ)
    pending = set(settings_changed_since(worker.production)) if worker.production else set()
    held = list(worker.plain_settings.all())
    return {
        "settings": [setting_json(s, pending) for s in held],
        "removedPendingInProduction": sorted(pending - {s.name for s in held}),
    }


@router.put(
    "/workers/{uuid:id}/settings/{name}",
    response={200: SettingOut, frozenset({400, 401, 403, 404, 409}): ErrorOut},
    summary="Set a plain setting (read in code as ctx.env.NAME; deployments after this get it)",
)
def put_setting(request, id: UUID, body: SettingIn, name: str = SettingName):
    worker = worker_for(request, id, Action.MANAGE)
    try:
        found = set_setting(worker, name, body.value)
    except SettingError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    record(request, worker.tenant, "setting.set", f"{worker.name} {name}", value=body.value)
    return setting_json(found, {name} if worker.production_id else set())


@router.delete(
    "/workers/{uuid:id}/settings/{name}",
    response={204: None, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="Remove a plain setting (deployments after this run without it)",
)
def delete_setting(request, id: UUID, name: str = SettingName):
    worker = worker_for(request, id, Action.MANAGE)
    removed, _ = WorkerSetting.objects.filter(worker=worker, name=name).delete()
    if not removed:
        raise ApiError(404, "not_found", f"{worker.name} has no setting named {name}.")
    record(request, worker.tenant, "setting.delete", f"{worker.name} {name}")
    return HttpResponse(status=204)
