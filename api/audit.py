"""The audit log and the charts' figures over the API: what the portal's audit page and its
charts show, for the `manage` and `read` scopes, as JSON (and the audit log as CSV)."""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Query, Router, Schema
from pydantic import Field

from telemetry.metrics import RANGES, merged, percentile, series
from tenancy.access import Action
from tenancy.audit import audit_csv
from tenancy.models import LABEL_PATTERN, AuditEvent

from .schemas import ErrorOut
from .workers import tenant_for, worker_for

router = Router(tags=["audit and metrics"])
PAGE = 100
LATEST = 4102444800  # 2100-01-01, in seconds since the epoch
ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}


class AuditEventOut(Schema):
    id: int
    createdAt: datetime
    tenant: str
    actor: str = Field(description="The user or API key, as it was.")
    action: str
    target: str
    details: dict[str, Any]
    ip: str | None


class AuditPage(Schema):
    events: list[AuditEventOut]
    next: int | None = Field(description="Pass as `before` for the next (older) page.")


# Query parameters are optional but never null (a query string cannot say null): typed as
# the value, defaulting to None.
class AuditFilters(Schema):
    tenant: str = Field(None, pattern=LABEL_PATTERN, max_length=50)  # type: ignore[assignment]
    action: str = Field(  # type: ignore[assignment]
        None, max_length=64, pattern=r"^[a-z_.]+$", description="An action or its start: `key.`"
    )
    since: int = Field(  # type: ignore[assignment]
        None, ge=0, le=LATEST, description="Seconds since the epoch."
    )
    until: int = Field(  # type: ignore[assignment]
        None, ge=0, le=LATEST, description="Seconds since the epoch."
    )


def audited(tenant, filters: AuditFilters):
    events = AuditEvent.objects.filter(tenant=tenant)
    if filters.action:
        events = events.filter(action__startswith=filters.action)
    if filters.since is not None:
        events = events.filter(created__gte=datetime.fromtimestamp(filters.since, UTC))
    if filters.until is not None:
        events = events.filter(created__lt=datetime.fromtimestamp(filters.until, UTC))
    return events


@router.get(
    "/audit",
    response={200: AuditPage, **ERRORS},
    summary="The tenant's audit log, newest first, a page at a time (`before`: the last `next`)",
)
def audit_log(request, filters: Query[AuditFilters], before: int | None = Query(None, ge=1)):
    tenant = tenant_for(request, filters.tenant, Action.MANAGE, viewing=True)
    events = audited(tenant, filters)
    if before is not None:
        events = events.filter(pk__lt=before)
    page = list(events.order_by("-id")[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    return {
        "events": [
            {
                "id": e.pk,
                "createdAt": e.created,
                "tenant": e.tenant_slug,
                "actor": e.actor_label,
                "action": e.action,
                "target": e.target,
                "details": e.details,
                "ip": e.ip,
            }
            for e in page
        ],  # fmt: skip
        "next": page[-1].pk if more else None,
    }


@router.get(
    "/audit/export",
    response={frozenset({400, 401, 403, 404}): ErrorOut},
    summary="The same events as CSV, oldest first, streamed",
    openapi_extra={
        "responses": {
            "200": {
                "description": "text/csv: created, tenant, actor, action, target, details, ip",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
)
def audit_export(request, filters: Query[AuditFilters]):
    tenant = tenant_for(request, filters.tenant, Action.MANAGE, viewing=True)
    return audit_csv(audited(tenant, filters), f"audit-{tenant.slug}.csv")


class MetricPoint(Schema):
    start: datetime
    calls: int
    errors: int
    timeouts: int
    coldStarts: int
    p50Ms: float | None
    p95Ms: float | None


class MetricsOut(Schema):
    range: str
    step: int = Field(description="Seconds per point.")
    calls: int
    errors: int
    p50Ms: float | None
    p95Ms: float | None
    p99Ms: float | None
    points: list[MetricPoint]


@router.get(
    "/workers/{uuid:id}/metrics",
    response={200: MetricsOut, **ERRORS},
    summary="A worker's calls, errors and durations over a range: the series its chart draws",
)
def worker_metrics(request, id: UUID, range: Literal["1h", "24h", "7d", "30d"] = "24h"):  # noqa: A002
    worker = worker_for(request, id, Action.READ)
    points = series(list(worker.deployments.values_list("pk", flat=True)), range)
    counts = merged(points)
    return {
        "range": range,
        "step": int(RANGES[range][1].total_seconds()),
        "calls": sum(p.calls for p in points),
        "errors": sum(p.errors for p in points),
        "p50Ms": percentile(counts, 50),
        "p95Ms": percentile(counts, 95),
        "p99Ms": percentile(counts, 99),
        "points": [
            {
                "start": p.start,
                "calls": p.calls,
                "errors": p.errors,
                "timeouts": p.timeouts,
                "coldStarts": p.cold_starts,
                "p50Ms": p.percentile(50),
                "p95Ms": p.percentile(95),
            }
            for p in points
        ],  # fmt: skip
    }
