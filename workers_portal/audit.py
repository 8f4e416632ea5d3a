"""Recording audit events from views, the API and the admin."""

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
