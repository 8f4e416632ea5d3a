"""Workers and deployments in the JSON API: deploy, read, delete, cancel, promote."""

import base64
import binascii
from uuid import UUID

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from ninja import Query, Router, Status

from deployments.backends import backend_for_worker
from deployments.config import worker_limits
from deployments.deploy import cancel, delete_worker, deploy, refuse
from deployments.models import Deployment
from deployments.program import (
    Program,
    ProgramError,
    ProgramTooLarge,
    program_from_archive,
    program_from_files,
)
from releases.production import ReleaseError, canary_metrics, set_production
from tenancy.access import Action, can
from tenancy.audit import record
from tenancy.models import LABEL_PATTERN
from tenancy.quotas import QuotaExceeded, check_new_worker
from workers.models import Worker

from .errors import ApiError, not_found, require
from .schemas import (
    DeployedOut,
    DeployIn,
    DeploymentList,
    DeploymentOut,
    ErrorOut,
    FilesOut,
    ProductionIn,
    WorkerList,
    WorkerOut,
)

router = Router(tags=["workers"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
LIST_ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}  # 400: a query parameter out of range


def deployment_json(d: Deployment) -> dict:
    return {
        "id": d.code,
        "status": d.status,
        "backend": d.backend,
        "entry": d.entry,
        "files": sorted(d.files),
        "functions": d.functions,
        "httpHandler": d.http,
        "packages": d.packages,
        "lockfile": d.lockfile or None,
        "errorMessage": d.error_message or None,
        "backendId": d.backend_id or None,
        "url": d.url or None,
        "createdAt": d.created,
        "readyAt": d.finished_at if d.status == Deployment.Status.READY else None,
        "buildStep": (d.backend_state or None) if not d.is_terminal else None,
        "problems": [problem_json(p) for p in d.diagnostics or []],
        "previewOnly": d.preview_only,
    }


def problem_json(problem: dict) -> dict:
    return {
        "file": str(problem.get("file", "")),
        "line": int(problem.get("line") or 0),
        "column": int(problem.get("column") or 0),
        "message": str(problem.get("message", "")),
    }


def worker_json(w: Worker, latest: Deployment | None | bool = False) -> dict:
    if latest is False:  # not looked up by the caller (a list does it for all at once)
        latest = w.latest_deployment()
    return {
        "id": w.code,
        "name": w.name,
        "tenant": w.tenant.slug,
        "url": backend_for_worker(w).production_url(w),
        "public": w.public,
        "production": deployment_json(w.production) if w.production else None,
        "productionSince": w.production_since,
        "promotedBy": w.promoted_by,
        "autoPromote": w.auto_promote,
        "canary": canary_json(w),
        "lastCanaryNote": w.canary_note,
        "latestDeployment": deployment_json(latest) if latest else None,
        "limits": worker_limits(w),
        "createdAt": w.created,
    }


def side_json(side) -> dict:
    return {
        "deployment": side.deployment.code, "calls": side.calls, "errors": side.errors,
        "errorRate": round(side.error_rate, 2), "p50Ms": side.p50_ms, "p95Ms": side.p95_ms,
    }  # fmt: skip


def canary_json(w: Worker) -> dict | None:
    sides = canary_metrics(w)
    if sides is None:
        return None
    return {
        "deployment": deployment_json(w.canary),
        "percent": w.canary_percent,
        "since": w.canary_since,
        "startedBy": w.canary_by,
        "autoRollback": w.canary_auto_rollback,
        "margin": w.canary_margin,
        "minCalls": w.canary_min_calls,
        "production": side_json(sides[0]),
        "canary": side_json(sides[1]),
    }


def workers_of(request):
    return Worker.objects.visible_to(request.principal).select_related(
        "tenant", "production__worker", "production__tenant", "canary__worker", "canary__tenant"
    )


def worker_for(request, code: UUID, action: Action) -> Worker:
    worker = workers_of(request).filter(code=code).first()
    if worker is None:
        raise not_found("worker")
    require(request, action, worker)
    return worker


def deployment_for(request, code: UUID, action: Action) -> Deployment:
    found = Deployment.objects.visible_to(request.principal).select_related("worker", "tenant")
    deployment = found.filter(code=code).first()
    if deployment is None:
        raise not_found("deployment")
    require(request, action, deployment)
    return deployment


@router.get(
    "/workers",
    response={200: WorkerList, **LIST_ERRORS},
    summary="List workers, oldest first, a page at a time (`after` is the previous page's `next`)",
)
def list_workers(
    request,
    limit: int = Query(50, ge=1, le=500),
    after: int | None = Query(None, ge=0),
    name: str = Query(None, pattern=LABEL_PATTERN, max_length=30, description="Exactly this name."),
):
    principal = request.principal
    readable = [t.pk for t in principal.tenants if can(principal, Action.READ, t)]
    if not readable:
        raise ApiError(403, "forbidden", "This key may not read (it lacks the read scope).")
    found = workers_of(request).filter(tenant_id__in=readable).order_by("id")
    if name is not None:
        found = found.filter(name=name)
    if after is not None:
        found = found.filter(id__gt=after)
    workers = list(found[: limit + 1])
    more = len(workers) > limit
    workers = workers[:limit]
    latest = Deployment.latest_of(workers)
    return {
        "workers": [worker_json(w, latest.get(w.pk)) for w in workers],
        "next": workers[-1].pk if more else None,
    }


def tenant_for(request, slug: str | None, action: Action, viewing: bool = False):
    """The tenant an operation acts in: the one `slug` names, else the principal's only one
    (or the session's); 404 when there is none such, 403 when `action` is not allowed."""
    tenants = request.principal.tenants
    if slug:
        tenant = next((t for t in tenants if t.slug == slug), None)
    else:
        tenant = tenants[0] if len(tenants) == 1 else request.tenant
    if tenant is None:
        raise ApiError(404, "not_found", "No such tenant (name it with `tenant`).")
    require(request, action, tenant, viewing=viewing)
    return tenant


def program_of(body: DeployIn) -> Program | str:
    """The upload as a program, or why it cannot be one (the deployment then fails at once,
    as a build would); over a size limit is a 413."""
    given = [f for f in ("code", "files", "archive") if getattr(body, f) is not None]
    if len(given) != 1:
        raise ApiError(400, "invalid_request", "Send exactly one of `code`, `files` and `archive`.")
    try:
        if body.code is not None:
            return program_from_files({body.entry or "index.ts": body.code}, body.entry)
        if body.files is not None:
            return program_from_files(body.files, body.entry)
        try:
            data = base64.b64decode(body.archive, validate=True)
        except binascii.Error:
            return "`archive` is not valid base64."
        return program_from_archive(data, body.entry)
    except ProgramTooLarge as exc:
        raise ApiError(413, "payload_too_large", str(exc)) from exc
    except ProgramError as exc:
        return str(exc)


@router.post(
    "/workers",
    response={202: DeployedOut, frozenset({400, 401, 403, 404, 409, 413, 429}): ErrorOut},
    summary="Deploy: create the worker if needed and a new deployment",
)
def create_deployment(request, body: DeployIn):
    tenant = tenant_for(request, body.tenant, Action.DEPLOY)
    program = program_of(body)
    user = request.user if request.principal.key is None else None
    try:
        with transaction.atomic():
            worker = Worker.objects.filter(tenant=tenant, name=body.name).first()
            if worker is None:
                check_new_worker(tenant)
                worker = Worker.objects.create(tenant=tenant, name=body.name)
            if isinstance(program, str):
                deployment = refuse(worker, program, user)
            else:
                deployment = deploy(
                    worker, program, user, update_lock=body.updateLock,
                    preview_only=not body.promote,
                )  # fmt: skip
            record(request, tenant, "deploy", body.name, deployment=deployment.short_id)
    except IntegrityError as exc:
        raise ApiError(
            409, "conflict", "The worker was created by another request; retry."
        ) from exc
    except QuotaExceeded as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        raise ApiError(exc.status, "quota_exceeded", exc.message, headers) from exc
    return Status(202, {**worker_json(worker), "deployment": deployment_json(deployment)})


@router.get("/workers/{uuid:id}", response={200: WorkerOut, **ERRORS}, summary="A worker")
def get_worker(request, id: UUID):
    return worker_json(worker_for(request, id, Action.READ))


@router.delete(
    "/workers/{uuid:id}",
    response={204: None, **ERRORS},
    summary="Delete a worker with its deployments and logs",
)
def remove_worker(request, id: UUID):
    worker = worker_for(request, id, Action.DEPLOY)
    delete_worker(worker)
    record(request, worker.tenant, "worker.delete", worker.name)
    return HttpResponse(status=204)


@router.get(
    "/workers/{uuid:id}/deployments",
    response={200: DeploymentList, **ERRORS},
    summary="A worker's deployments, newest first",
)
def worker_deployments(request, id: UUID):
    worker = worker_for(request, id, Action.READ)
    found = worker.deployments.select_related("worker", "tenant")[:100]
    return {"deployments": [deployment_json(d) for d in found]}


@router.post(
    "/workers/{uuid:id}/production",
    response={200: WorkerOut, frozenset({400, 401, 403, 404, 409}): ErrorOut},
    summary="Promote a ready deployment, or roll back to an earlier one",
)
def promote(request, id: UUID, body: ProductionIn):
    worker = worker_for(request, id, Action.DEPLOY)
    target = worker.deployments.filter(code=body.id).first()
    if target is None:
        raise ApiError(404, "not_found", "No such deployment of this worker.")
    if target.status != Deployment.Status.READY:
        raise ApiError(
            409, "not_ready", f"That deployment is {target.status}; only ready ones serve."
        )
    previous = worker.production
    try:
        how = set_production(worker, target, request.principal.label)
    except ReleaseError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    record(
        request, worker.tenant, "production.set", worker.name, deployment=target.short_id,
        previous=previous.short_id if previous else None, how=how,
    )  # fmt: skip
    worker.refresh_from_db()
    return worker_json(worker)


@router.get(
    "/deployments/{uuid:id}", response={200: DeploymentOut, **ERRORS}, summary="A deployment"
)
def get_deployment(request, id: UUID):
    return deployment_json(deployment_for(request, id, Action.READ))


@router.get(
    "/deployments/{uuid:id}/files",
    response={200: FilesOut, **ERRORS},
    summary="A deployment's files, as deployed",
)
def deployment_files(request, id: UUID):
    d = deployment_for(request, id, Action.READ)
    return {"entry": d.entry, "files": d.files}


@router.post(
    "/deployments/{uuid:id}/cancel",
    response={200: DeploymentOut, frozenset({401, 403, 404, 409}): ErrorOut},
    summary="Cancel a build that has not ended (on its back end too)",
)
def cancel_deployment(request, id: UUID):
    d = deployment_for(request, id, Action.DEPLOY)
    if not cancel(d):
        raise ApiError(
            409,
            "already_finished",
            f"This deployment is {d.status}; only builds that have not ended can be canceled.",
        )
    record(request, d.tenant, "deployment.cancel", d.short_id)
    return deployment_json(d)
