from django.conf import settings

from .middleware import domain_tenant
from .models import Membership


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
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        memberships = Membership.objects.filter(user=user).select_related("tenant")
    tenant = getattr(request, "tenant", None)
    return {
        "brand": brand_for(domain_tenant(request) or tenant),
        "tenant": tenant,
        "membership": getattr(request, "membership", None),
        "memberships": memberships,
    }
