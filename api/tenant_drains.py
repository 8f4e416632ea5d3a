"""A tenant's log drains over the API (what the portal's drains page does): listed with how
delivery goes, added (the signing secret answered once), resumed, removed; `manage` scope,
audited. Only public addresses, as in the portal (telemetry.drains)."""

from datetime import datetime
from uuid import UUID

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from telemetry.drains import DrainRefused, new_drain, resume
from telemetry.models import LogDrain
from tenancy.access import Action
from tenancy.audit import record
from tenancy.models import LABEL_PATTERN
from tenancy.quotas import QuotaExceeded

from .errors import ApiError, require
from .schemas import SPACE, ErrorOut, Strict
from .workers import tenant_for

router = Router(tags=["log drains"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}


class DrainOut(Schema):
    id: UUID
    url: str
    status: str = Field(description="active, or paused after too many failed deliveries.")
    failures: int = Field(description="Failed deliveries in a row.")
    lastError: str | None
    lastDeliveredAt: datetime | None
    deliveredLines: int
    nextAttemptAt: datetime
    createdAt: datetime
    createdBy: str


class DrainCreated(DrainOut):
    secret: str = Field(
        description="Signs each delivery (X-Signature: sha256=HMAC of the body); answered only now."
    )


class DrainList(Schema):
    drains: list[DrainOut]


class DrainIn(Strict):
    url: str = Field(min_length=1, max_length=500, pattern=rf"^https?://[^\x00{SPACE}]+$")
    tenant: str | None = Field(None, pattern=LABEL_PATTERN)


def drain_json(d: LogDrain) -> dict:
    return {
        "id": d.code, "url": d.url, "status": d.status, "failures": d.failures,
        "lastError": d.last_error or None, "lastDeliveredAt": d.last_delivered_at,
        "deliveredLines": d.delivered_lines, "nextAttemptAt": d.next_attempt_at,
        "createdAt": d.created, "createdBy": d.created_by,
    }  # fmt: skip


def drain_for(request, code: UUID) -> LogDrain:
    found = LogDrain.objects.visible_to(request.principal).select_related("tenant")
    drain = found.filter(code=code).first()
    if drain is None:
        raise ApiError(404, "not_found", "No such drain.")
    require(request, Action.MANAGE, drain)
    return drain


@router.get(
    "/drains",
    response={200: DrainList, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="The tenant's log drains and how delivery goes",
)
def list_drains(request, tenant: str = Query(None, pattern=LABEL_PATTERN, max_length=50)):
    chosen = tenant_for(request, tenant, Action.MANAGE, viewing=True)
    return {"drains": [drain_json(d) for d in LogDrain.objects.filter(tenant=chosen)]}


@router.post(
    "/drains",
    response={201: DrainCreated, frozenset({400, 401, 403, 404, 409}): ErrorOut},
    summary="Send the tenant's log lines to a URL (signed NDJSON, in order, retried)",
)
def add_drain(request, body: DrainIn):
    tenant = tenant_for(request, body.tenant, Action.MANAGE)
    try:
        drain = new_drain(tenant, body.url, request.principal.label)
    except DrainRefused as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    record(request, tenant, "drain.create", body.url)
    return Status(201, {**drain_json(drain), "secret": drain.secret})


@router.post(
    "/drains/{uuid:id}/resume",
    response={200: DrainOut, **ERRORS},
    summary="Deliver again to a paused drain, from where it stopped",
)
def resume_drain(request, id: UUID):
    drain = drain_for(request, id)
    resume(drain)
    record(request, drain.tenant, "drain.resume", drain.url)
    drain.refresh_from_db()
    return drain_json(drain)


@router.delete("/drains/{uuid:id}", response={204: None, **ERRORS}, summary="Remove a drain")
def remove_drain(request, id: UUID):
    drain = drain_for(request, id)
    drain.delete()
    record(request, drain.tenant, "drain.delete", drain.url)
    return HttpResponse(status=204)
