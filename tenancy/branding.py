"""A tenant's brand: the platform's, with what the tenant set in its place."""

from django.conf import settings


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
