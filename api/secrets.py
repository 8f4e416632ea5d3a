"""A worker's secrets over the API: names and when they changed, never values; set and
removed as in the portal (the `manage` scope), audited, within the tenant's quota."""

from datetime import datetime
from uuid import UUID

from django.http import HttpResponse
from ninja import Field, Path, Router, Schema

from deployments.deploy import secrets_changed_since
from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded, check_room
from workers.models import WorkerSecret
from workers.plain_settings import is_a_setting
from workers.secrets import NAME, encrypt

from .errors import ApiError, require
from .schemas import ErrorOut, Strict
from .workers import worker_for

router = Router(tags=["secrets"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
SecretName = Path(
    ...,
    pattern=NAME.pattern,
    description="Capital letters, digits and _, starting with a letter or _ (at most 64).",
)


class SecretOut(Schema):
    name: str
    updatedAt: datetime
    pendingInProduction: bool = Field(
        description="Set or changed after production's deploy: production runs without this "
        "value until the next deploy."
    )


class SecretList(Schema):
    secrets: list[SecretOut]
    removedPendingInProduction: list[str] = Field(
        description="Removed after production's deploy: production still has them."
    )


class SecretIn(Strict):
    value: str = Field(max_length=32768, description="Write-only: never answered again.")


def listing(worker) -> dict:
    pending = set(secrets_changed_since(worker.production)) if worker.production else set()
    held = list(worker.secrets.all())
    names = {s.name for s in held}
    return {
        "secrets": [
            {"name": s.name, "updatedAt": s.updated, "pendingInProduction": s.name in pending}
            for s in held
        ],
        "removedPendingInProduction": sorted(pending - names),
    }


@router.get(
    "/workers/{uuid:id}/secrets",
    response={200: SecretList, **ERRORS},
    summary="A worker's secrets: names and when they changed, never values",
)
def list_secrets(request, id: UUID):
    worker = worker_for(request, id, Action.READ)
    require(request, Action.MANAGE, worker, viewing=True)
    return listing(worker)


@router.put(
    "/workers/{uuid:id}/secrets/{name}",
    response={200: SecretOut, frozenset({400, 401, 403, 404, 409}): ErrorOut},
    summary="Set a secret (read in code as process.env.NAME; deployments after this get it)",
)
def set_secret(request, id: UUID, body: SecretIn, name: str = SecretName):
    worker = worker_for(request, id, Action.MANAGE)
    if is_a_setting(worker, name):
        raise ApiError(
            409, "conflict", f"{name} is a plain setting of {worker.name}: remove it first."
        )
    try:
        if not worker.secrets.filter(name=name).exists():
            check_room(worker.tenant, "max_secrets")
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    secret, _ = WorkerSecret.objects.update_or_create(
        worker=worker, name=name, defaults={"value_encrypted": encrypt(body.value)}
    )
    record(request, worker.tenant, "secret.set", f"{worker.name} {name}")
    return {
        "name": name,
        "updatedAt": secret.updated,
        "pendingInProduction": worker.production_id is not None,
    }


@router.delete(
    "/workers/{uuid:id}/secrets/{name}",
    response={204: None, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="Remove a secret (deployments after this run without it)",
)
def delete_secret(request, id: UUID, name: str = SecretName):
    worker = worker_for(request, id, Action.MANAGE)
    removed, _ = WorkerSecret.objects.filter(worker=worker, name=name).delete()
    if not removed:
        raise ApiError(404, "not_found", f"{worker.name} has no secret named {name}.")
    record(request, worker.tenant, "secret.delete", f"{worker.name} {name}")
    return HttpResponse(status=204)
