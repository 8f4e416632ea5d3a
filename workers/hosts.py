"""Which Host headers the web processes answer: the platform's own names (PLATFORM_HOSTS,
set as ALLOWED_HOSTS in the environment) and the tenants' verified portal domains. Django's
own check cannot know the latter, so it is given "*" and this middleware, first of all,
does the checking (as Django documents for projects that validate the header themselves)."""

import time

from django.conf import settings
from django.http import HttpResponseBadRequest
from django.http.request import split_domain_port, validate_host

from tenancy.models import Tenant

from .models import Domain

PORTAL_DOMAINS_TTL = 5.0  # seconds a process trusts its list of portal domains
_cache: tuple[float, frozenset[str]] = (0.0, frozenset())


def portal_domains() -> frozenset[str]:
    """The verified portal domains of active tenants, looked up again every few seconds."""
    global _cache
    now = time.monotonic()
    if now - _cache[0] > PORTAL_DOMAINS_TTL:
        names = Domain.objects.filter(
            portal=True, status=Domain.Status.VERIFIED, tenant__status=Tenant.Status.ACTIVE
        ).values_list("hostname", flat=True)
        _cache = (now, frozenset(names))
    return _cache[1]


def forget_portal_domains() -> None:
    global _cache
    _cache = (0.0, frozenset())


def platform_hosts() -> list[str]:
    # The test runner adds its own names to ALLOWED_HOSTS; they count here too.
    return [*settings.PLATFORM_HOSTS, *(h for h in settings.ALLOWED_HOSTS if h != "*")]


class HostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
        if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in request.META:
            raw = request.META["HTTP_X_FORWARDED_HOST"]
        name, _port = split_domain_port(raw)
        if not name or not (validate_host(name, platform_hosts()) or name in portal_domains()):
            return HttpResponseBadRequest(
                "This address is not served here.", content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)
