"""One principal per request (tenancy.access), built once: an API key when the
request carries one, else the signed-in member; and the tenant the request works in."""

from tenancy.access import ANONYMOUS, key_principal, member_principal
from tenancy.middleware import current_tenant

from .api_keys import key_from_header

# The runtime's own API authenticates with its token; it never needs a principal, and it is
# the busiest path of the control plane.
SKIPPED_PREFIXES = ("/internal/", "/static/")


class PrincipalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.principal = ANONYMOUS
        request.tenant = None
        if not request.path.startswith(SKIPPED_PREFIXES):
            request.principal = principal_for(request)
            request.tenant = current_tenant(request, request.principal)
        return self.get_response(request)


def principal_for(request):
    header = request.headers.get("Authorization", "")
    if header:
        key = key_from_header(header)
        return key_principal(key) if key is not None else ANONYMOUS
    return member_principal(request.user)
