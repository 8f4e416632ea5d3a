"""Recording audit events from views and the API."""

from .models import AuditEvent, Tenant


def record(request, tenant: Tenant, action: str, target: str = "", **details) -> AuditEvent:
    key = getattr(getattr(request, "principal", None), "key", None)
    user = request.user if request.user.is_authenticated else None
    if key is not None:
        user, label = None, f"API key {key.name} (wk_{key.prefix}_…)"
    else:
        label = user.get_username() if user else "anonymous"
    return AuditEvent.objects.create(
        tenant=tenant,
        actor=user,
        actor_label=label,
        action=action,
        target=target,
        details=details,
        ip=request.META.get("REMOTE_ADDR") or None,
    )
