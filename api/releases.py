"""Canaries and releases in the JSON API: start, change, promote and cancel a worker's canary;
make, promote and revert releases of several workers at once."""

from uuid import UUID

from django.db import transaction
from ninja import Router, Status

from deployments.models import Deployment
from releases.models import Release, ReleaseItem
from releases.production import (
    ReleaseError,
    end_canary,
    promote_release,
    revert_release,
    start_canary,
)
from tenancy.access import Action
from tenancy.audit import record

from .errors import ApiError, not_found, require
from .schemas import CanaryIn, ErrorOut, ReleaseIn, ReleaseList, ReleaseOut, WorkerOut
from .workers import deployment_json, tenant_for, worker_for, worker_json

router = Router(tags=["releases"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
CHANGE_ERRORS = {frozenset({400, 401, 403, 404, 409}): ErrorOut}
QUERY_ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}  # 400: a parameter given twice


def conflict(exc: ReleaseError) -> ApiError:
    return ApiError(409, "conflict", str(exc))


@router.put(
    "/workers/{uuid:id}/canary",
    response={200: WorkerOut, **CHANGE_ERRORS},
    summary="Start a canary, or change its share of the traffic",
)
def put_canary(request, id: UUID, body: CanaryIn):
    worker = worker_for(request, id, Action.DEPLOY)
    target = worker.deployments.filter(code=body.deployment).first()
    if target is None:
        raise ApiError(404, "not_found", "No such deployment of this worker.")
    try:
        start_canary(
            worker, target, body.percent, request.principal.label,
            auto_rollback=body.autoRollback, margin=body.margin, min_calls=body.minCalls,
        )  # fmt: skip
    except ReleaseError as exc:
        raise conflict(exc) from exc
    record(request, worker.tenant, "canary.start", worker.name,
           deployment=target.short_id, percent=body.percent)  # fmt: skip
    return worker_json(worker_for(request, id, Action.READ))


def finish(request, id: UUID, promote: bool) -> dict:
    worker = worker_for(request, id, Action.DEPLOY)
    try:
        ended = end_canary(worker, request.principal.label, promote=promote)
    except ReleaseError as exc:
        raise conflict(exc) from exc
    if ended is None:
        raise ApiError(409, "no_canary", "This worker has no canary under way.")
    action = "canary.promote" if promote else "canary.cancel"
    record(request, worker.tenant, action, worker.name, deployment=ended.short_id)
    return worker_json(worker_for(request, id, Action.READ))


@router.delete(
    "/workers/{uuid:id}/canary",
    response={200: WorkerOut, **CHANGE_ERRORS},
    summary="Cancel the canary: all traffic back to production",
)
def cancel_canary(request, id: UUID):
    return finish(request, id, promote=False)


@router.post(
    "/workers/{uuid:id}/canary/promote",
    response={200: WorkerOut, **CHANGE_ERRORS},
    summary="Promote the canary: all traffic to it",
)
def promote_canary(request, id: UUID):
    return finish(request, id, promote=True)


# --- releases ------------------------------------------------------------------------------


def release_json(release: Release) -> dict:
    items = release.items.select_related("worker", "deployment__worker", "deployment__tenant")
    return {
        "id": release.code,
        "name": release.name,
        "status": release.status,
        "items": [
            {
                "worker": i.worker.code,
                "workerName": i.worker.name,
                "deployment": deployment_json(i.deployment),
            }
            for i in items
        ],  # fmt: skip
        "createdBy": release.created_by,
        "createdAt": release.created,
        "promotedBy": release.promoted_by,
        "promotedAt": release.promoted_at,
        "revertedBy": release.reverted_by,
        "revertedAt": release.reverted_at,
        "previous": release.previous,
    }


def release_for(request, code: UUID, action: Action) -> Release:
    release = (
        Release.objects.visible_to(request.principal)
        .select_related("tenant")
        .filter(code=code)
        .first()
    )
    if release is None:
        raise not_found("release")
    require(request, action, release)
    return release


@router.get("/releases", response={200: ReleaseList, **QUERY_ERRORS}, summary="List releases")
def list_releases(request, tenant: str | None = None):
    found = tenant_for(request, tenant, Action.READ)
    return {"releases": [release_json(r) for r in Release.objects.filter(tenant=found)[:100]]}


@router.post(
    "/releases",
    response={201: ReleaseOut, **CHANGE_ERRORS},
    summary="Make a release: one ready deployment for each of several workers",
)
def create_release(request, body: ReleaseIn):
    deployments = list(
        Deployment.objects.visible_to(request.principal)
        .select_related("worker", "tenant")
        .filter(code__in=body.deployments)
    )
    if len(deployments) != len(set(body.deployments)):
        raise ApiError(404, "not_found", "One or more of those deployments do not exist.")
    tenants = {d.tenant_id for d in deployments}
    if len(tenants) != 1:
        raise ApiError(409, "conflict", "A release's deployments belong to one tenant.")
    tenant = deployments[0].tenant
    require(request, Action.DEPLOY, tenant)
    workers = [d.worker_id for d in deployments]
    if len(set(workers)) != len(workers):
        raise ApiError(409, "conflict", "A release names one deployment per worker.")
    for d in deployments:
        if d.status != Deployment.Status.READY:
            raise ApiError(409, "not_ready", f"{d.short_id} is {d.status}; only ready ones serve.")
    with transaction.atomic():
        release = Release.objects.create(
            tenant=tenant, name=body.name.strip(), created_by=request.principal.label
        )
        ReleaseItem.objects.bulk_create(
            ReleaseItem(release=release, worker=d.worker, deployment=d) for d in deployments
        )
        record(request, tenant, "release.create", release.name,
               deployments={d.worker.name: d.short_id for d in deployments})  # fmt: skip
    return Status(201, release_json(release))


@router.get("/releases/{uuid:id}", response={200: ReleaseOut, **ERRORS}, summary="A release")
def get_release(request, id: UUID):
    return release_json(release_for(request, id, Action.READ))


@router.post(
    "/releases/{uuid:id}/promote",
    response={200: ReleaseOut, **CHANGE_ERRORS},
    summary="Promote a release: its workers switch together",
)
def promote(request, id: UUID):
    release = release_for(request, id, Action.DEPLOY)
    try:
        generation = promote_release(release, request.principal.label)
    except ReleaseError as exc:
        raise conflict(exc) from exc
    record(request, release.tenant, "release.promote", release.name, generation=generation)
    return release_json(release)


@router.post(
    "/releases/{uuid:id}/revert",
    response={200: ReleaseOut, **CHANGE_ERRORS},
    summary="Revert a live release: its workers get back, together, what they served before",
)
def revert(request, id: UUID):
    release = release_for(request, id, Action.DEPLOY)
    try:
        generation = revert_release(release, request.principal.label)
    except ReleaseError as exc:
        raise conflict(exc) from exc
    record(request, release.tenant, "release.revert", release.name, generation=generation)
    return release_json(release)
