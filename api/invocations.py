"""Invocation history in the JSON API: a worker's or a deployment's calls, newest first,
filtered, a page at a time (`before` is the previous page's `next`)."""

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from ninja import Query, Router

from telemetry.logs import of_worker
from telemetry.models import Invocation
from tenancy.access import Action

from .schemas import ErrorOut, InvocationList
from .workers import deployment_for, worker_for

router = Router(tags=["invocations"])
QUERY_ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}
PAGE = 100
LATEST = 4102444800  # 2100-01-01, in seconds since the epoch

Status = Literal["ok", "error", "timeout", "crashed"]


def listed(queryset, status, function, since, until, before) -> dict:
    if status:
        queryset = queryset.filter(status=status)
    if function:
        queryset = queryset.filter(function=function)
    if since is not None:
        queryset = queryset.filter(started_at__gte=datetime.fromtimestamp(since, UTC))
    if until is not None:
        queryset = queryset.filter(started_at__lt=datetime.fromtimestamp(until, UTC))
    if before is not None:
        queryset = queryset.filter(pk__lt=before)
    page = list(queryset.select_related("deployment").order_by("-id")[: PAGE + 1])
    more = len(page) > PAGE
    page = page[:PAGE]
    return {
        "invocations": [
            {
                "requestId": i.request_id,
                "deployment": i.deployment.code,
                "function": i.function,
                "trigger": i.trigger,
                "status": i.status,
                "statusCode": i.status_code,
                "errorMessage": i.error_message or None,
                "durationMs": i.duration_ms,
                "startedAt": i.started_at,
                "cold": i.cold,
                "lines": i.lines,
            }  # fmt: skip
            for i in page
        ],
        "next": page[-1].pk if more else None,
    }


@router.get(
    "/workers/{uuid:id}/invocations",
    response={200: InvocationList, **QUERY_ERRORS},
    summary="A worker's invocations, newest first (`since`/`until`: seconds since the epoch)",
)
def worker_invocations(
    request,
    id: UUID,
    status: Status | None = None,
    function: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
    since: int | None = Query(None, ge=0, le=LATEST),
    until: int | None = Query(None, ge=0, le=LATEST),
    before: int | None = Query(None, ge=1),
):
    worker = worker_for(request, id, Action.READ)
    queryset = of_worker(Invocation.objects.all(), worker)
    return listed(queryset, status, function, since, until, before)


@router.get(
    "/deployments/{uuid:id}/invocations",
    response={200: InvocationList, **QUERY_ERRORS},
    summary="A deployment's invocations, newest first",
)
def deployment_invocations(
    request,
    id: UUID,
    status: Status | None = None,
    function: str | None = Query(None, max_length=200, pattern=r"^[^\x00]*$"),
    since: int | None = Query(None, ge=0, le=LATEST),
    until: int | None = Query(None, ge=0, le=LATEST),
    before: int | None = Query(None, ge=1),
):
    deployment = deployment_for(request, id, Action.READ)
    return listed(deployment.invocations.all(), status, function, since, until, before)
