"""Resolves the tenant a signed-in user is working in (request.tenant, request.membership)."""

from .models import Membership, Tenant

SESSION_KEY = "tenant_id"


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        # A tenant's own domain shows its brand to everyone, even on the login page.
        host = request.get_host().split(":")[0].lower()
        request.domain_tenant = Tenant.objects.filter(custom_domain=host).first()
        if request.user.is_authenticated:
            memberships = Membership.objects.filter(user=request.user).select_related("tenant")
            chosen = (
                request.domain_tenant.id
                if request.domain_tenant
                else request.session.get(SESSION_KEY)
            )
            membership = None
            if chosen is not None:
                membership = memberships.filter(tenant_id=chosen).first()
            if membership is None:
                membership = memberships.order_by("tenant__name").first()
            if membership is not None:
                request.membership = membership
                request.tenant = membership.tenant
        return self.get_response(request)
