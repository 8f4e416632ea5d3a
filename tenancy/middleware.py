"""The tenant a request works in: the custom domain it came to, else the one the member
chose, else their first."""

from django.conf import settings
from django.http import HttpResponse

from .models import Tenant

SESSION_KEY = "tenant_id"


def domain_tenant(request) -> Tenant | None:
    """The tenant whose custom domain this request came to: its brand is shown to everyone
    there, even on the login page. Looked up once, and only when a page asks (the internal
    API and the runtime's ingest never do)."""
    if not hasattr(request, "_domain_tenant"):
        host = request.get_host().split(":")[0].lower()
        request._domain_tenant = (
            Tenant.objects.filter(custom_domain=host).first()
            # A portal domain the tenant verified itself (workers.models.Domain, portal=True).
            or Tenant.objects.filter(
                domains__hostname=host, domains__portal=True, domains__status="verified"
            ).first()
        )
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


class UploadSizeMiddleware:
    """Refuses a form upload larger than an upload may be before Django reads it (a file
    field's bytes are not counted by DATA_UPLOAD_MAX_MEMORY_SIZE: they would be spooled to
    disk whatever their size)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.content_type == "multipart/form-data":
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.MAX_UPLOAD_BYTES:
                return HttpResponse(
                    f"The upload is {length} bytes; at most {settings.MAX_UPLOAD_BYTES} bytes "
                    "may be sent at once (a worker's files hold at most "
                    f"{settings.MAX_SOURCE_BYTES} bytes).",
                    status=413,
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
