"""Recording audit events from views, the API and the admin, and exporting them (the only
way events leave: the database refuses to change or delete one)."""

import csv
import json

from django.http import StreamingHttpResponse

from .access import member_principal
from .models import AuditEvent, Tenant


def record(request, tenant: Tenant, action: str, target: str = "", **details) -> AuditEvent:
    principal = getattr(request, "principal", None) or member_principal(request.user)
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=principal.user if principal.key is None else None,
        actor_label=principal.label,
        action=action,
        target=target,
        details=details,
        ip=request.META.get("REMOTE_ADDR") or None,
    )


EXPORT_COLUMNS = ["created", "tenant", "actor", "action", "target", "details", "ip"]


class _Line:
    def write(self, value: str) -> str:
        return value


def audit_csv(events, filename: str) -> StreamingHttpResponse:
    """The events as CSV, oldest first, streamed (an export may hold years of them; an async
    iterator, so that under ASGI no thread is held per download)."""
    writer = csv.writer(_Line())

    async def rows():
        yield writer.writerow(EXPORT_COLUMNS)
        async for e in events.order_by("created", "id").aiterator(chunk_size=2000):
            yield writer.writerow([
                e.created.isoformat(), e.tenant_slug, e.actor_label, e.action, e.target,
                json.dumps(e.details, sort_keys=True), e.ip or "",
            ])  # fmt: skip

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
