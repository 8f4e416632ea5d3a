"""Usage per day in the JSON API (a key with the read scope), for billing and exports."""

from datetime import timedelta

from django.utils import timezone
from ninja import Query, Router

from telemetry.models import UsageDay
from tenancy.access import Action

from .schemas import ErrorOut, UsageOut
from .workers import tenant_for

router = Router(tags=["usage"])


@router.get(
    "/usage",
    response={200: UsageOut, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="What the tenant used per day (UTC): invocations, GB-seconds, builds, logs, runs",
)
def usage(
    request,
    days: int = Query(31, ge=1, le=400, description="The last this many days, today included."),
    tenant: str | None = None,
):
    found = tenant_for(request, tenant, Action.READ)
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    rows = UsageDay.objects.filter(tenant=found, day__gte=first, day__lte=today).order_by("day")
    return {
        "tenant": found.slug,
        "days": [
            {
                "day": d.day.isoformat(),
                "invocations": d.invocations,
                "gbSeconds": d.gb_seconds,
                "buildSeconds": d.build_seconds,
                "logLines": d.log_lines,
                "logBytes": d.log_bytes,
                "runs": d.runs,
                "cpuSeconds": d.cpu_seconds,
                "kvReads": d.kv_reads,
                "kvWrites": d.kv_writes,
                "kvBytes": d.kv_bytes,
                "queueMessages": d.queue_messages,
            }  # fmt: skip
            for d in rows
        ],
    }
