"""The tenant's own domains: add a hostname, see the records to create, check it now, send
its paths to workers' production, remove it. Owners and admins; audited."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from releases.domains import changed, removed
from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded
from workers.domains import TOKEN_PREFIX, DomainError, add, check, set_route
from workers.hosts import forget_portal_domains
from workers.models import Domain, DomainRoute, Worker

from .access import require, visible


def page(request, error: str = "", typed: str = "", status: int = 200, route_error=None):
    tenant = request.tenant
    domains = Domain.objects.filter(tenant=tenant).prefetch_related("routes__worker")
    context = {
        "domains": domains,
        "workers": Worker.objects.filter(tenant=tenant).order_by("name"),
        "error": error,
        "typed": typed,
        "route_error": route_error or {},
        "token_prefix": TOKEN_PREFIX,
        "cname_target": settings.DOMAINS_CNAME_TARGET,
        "a_targets": settings.DOMAINS_A_TARGETS,
    }
    return render(request, "domains.html", context, status=status)


@login_required
def domains_page(request):
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    require(request, Action.MANAGE, tenant, viewing=request.method == "GET")
    if request.method != "POST":
        return page(request)
    hostname = request.POST.get("hostname", "")
    try:
        domain = add(tenant, hostname, request.principal.label)
    except DomainError as exc:
        return page(request, str(exc), hostname, 400)
    except QuotaExceeded as exc:
        return page(request, exc.message, hostname, exc.status)
    record(request, tenant, "domain.add", domain.hostname)
    return redirect("domains")


@login_required
@require_POST
def domain_act(request, code, act):
    domain = visible(request, Domain.objects.select_related("tenant"), code=code)
    if act not in ("check", "delete", "route", "unroute", "portal"):
        raise Http404("No such action.")
    require(request, Action.MANAGE, domain)
    if act == "delete":
        removed(domain)
        domain.delete()
        record(request, domain.tenant, "domain.remove", domain.hostname)
        return redirect("domains")
    if act == "check":
        check(domain)
        record(request, domain.tenant, "domain.check", domain.hostname, status=domain.status)
    elif act == "portal":
        domain.portal = request.POST.get("on") == "1"
        domain.save(update_fields=["portal"])
        forget_portal_domains()
        record(request, domain.tenant, "domain.portal", domain.hostname, portal=domain.portal)
    elif act == "unroute":
        prefix = request.POST.get("prefix", "")
        DomainRoute.objects.filter(domain=domain, prefix=prefix).delete()
        record(request, domain.tenant, "domain.unroute", domain.hostname, prefix=prefix)
    else:
        worker = Worker.objects.filter(
            tenant=domain.tenant, name=request.POST.get("worker")
        ).first()
        try:
            if worker is None:
                raise DomainError("Choose one of this tenant's workers.")
            route = set_route(domain, worker, request.POST.get("prefix", "/"))
        except DomainError as exc:
            return page(request, status=400, route_error={domain.pk: str(exc)})
        record(request, domain.tenant, "domain.route", domain.hostname, prefix=route.prefix,
               worker=worker.name)  # fmt: skip
    changed(domain)
    return redirect("domains")
