"""What every page's template knows: the brand, the tenant, the role and what it may do."""

from tenancy.access import ANONYMOUS, Action, can
from tenancy.branding import brand_for
from tenancy.middleware import domain_tenant


def tenancy(request):
    """The current tenant, the user's role there, what it may do there, and the other
    tenants to switch to."""
    principal = getattr(request, "principal", ANONYMOUS)
    tenant = getattr(request, "tenant", None)
    return {
        "brand": brand_for(domain_tenant(request) or tenant),
        "tenant": tenant,
        "role": principal.role_in(tenant.pk) if tenant else "",
        "tenant_may": {a.value: can(principal, a, tenant) for a in Action} if tenant else {},
        "my_tenants": principal.tenants,
    }
