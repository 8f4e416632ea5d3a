from django.conf import settings

from .access import ANONYMOUS, Action, can
from .middleware import domain_tenant


def brand_for(tenant) -> dict:
    """The platform's brand, with what the tenant set in its place."""
    brand = {
        "name": settings.PLATFORM_NAME,
        "logo_url": settings.PLATFORM_LOGO_URL,
        "color": settings.PLATFORM_COLOR,
        "support_email": settings.PLATFORM_SUPPORT_EMAIL,
    }
    if tenant is not None:
        for key, field in (("name", "brand_name"), ("logo_url", "brand_logo_url"),
                           ("color", "brand_color"), ("support_email", "support_email")):  # fmt: skip
            if getattr(tenant, field):
                brand[key] = getattr(tenant, field)
    return brand


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
