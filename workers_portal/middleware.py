"""Resolves the tenant a signed-in user is working in (request.tenant, request.membership)."""

from .models import Membership, Tenant

SESSION_KEY = "tenant_id"


def domain_tenant(request) -> Tenant | None:
    """The tenant whose custom domain this request came to: its brand is shown to everyone
    there, even on the login page. Looked up once, and only when a page asks (the internal
    API and the runtime's ingest never do)."""
    if not hasattr(request, "_domain_tenant"):
        host = request.get_host().split(":")[0].lower()
        request._domain_tenant = Tenant.objects.filter(custom_domain=host).first()
    return request._domain_tenant


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        if request.user.is_authenticated:
            memberships = Membership.objects.filter(user=request.user).select_related("tenant")
            on_domain = domain_tenant(request)
            chosen = on_domain.id if on_domain else request.session.get(SESSION_KEY)
            membership = None
            if chosen is not None:
                membership = memberships.filter(tenant_id=chosen).first()
            if membership is None:
                membership = memberships.order_by("tenant__name").first()
            if membership is not None:
                request.membership = membership
                request.tenant = membership.tenant
        return self.get_response(request)
