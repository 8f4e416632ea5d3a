"""The tenant a request works in: the custom domain it came to, else the one the member
chose, else their first."""

from .models import Tenant

SESSION_KEY = "tenant_id"


def domain_tenant(request) -> Tenant | None:
    """The tenant whose custom domain this request came to: its brand is shown to everyone
    there, even on the login page. Looked up once, and only when a page asks (the internal
    API and the runtime's ingest never do)."""
    if not hasattr(request, "_domain_tenant"):
        host = request.get_host().split(":")[0].lower()
        request._domain_tenant = Tenant.objects.filter(custom_domain=host).first()
    return request._domain_tenant


def current_tenant(request, principal) -> Tenant | None:
    """Tenant-wide pages (dashboard, keys, members, audit) show this tenant."""
    if not principal.grants:
        return None
    if principal.key is not None:
        return principal.tenants[0]
    on_domain = domain_tenant(request)
    for chosen in (on_domain.pk if on_domain else None, request.session.get(SESSION_KEY)):
        if chosen in principal.grants:
            return principal.grants[chosen].tenant
    return principal.tenants[0]
