"""The tenant's log drains: add one (its signing secret shown once), see how delivery goes,
resume a paused one, remove one. Owners and admins; audited."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from telemetry.drains import DrainRefused, new_drain, resume
from telemetry.models import LogDrain
from tenancy.access import Action
from tenancy.audit import record
from tenancy.quotas import QuotaExceeded

from .access import require, visible


@login_required
def drains_page(request):
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    require(request, Action.MANAGE, tenant, viewing=request.method == "GET")
    error, created, status, url = "", None, 200, ""
    if request.method == "POST":
        url = request.POST.get("url", "").strip()
        try:
            created = new_drain(tenant, url, request.principal.label)
        except DrainRefused as exc:
            error, status = str(exc), 400
        except QuotaExceeded as exc:
            error, status = exc.message, exc.status
        else:
            record(request, tenant, "drain.create", url)
            url = ""
    context = {
        "typed": url,  # kept in the field when it was refused
        "drains": LogDrain.objects.filter(tenant=tenant),
        "error": error,
        "created": created,
        "max_failures": settings.DRAIN_MAX_FAILURES,
    }
    return render(request, "drains.html", context, status=status)


@login_required
@require_POST
def drain_act(request, code, act):
    drain = visible(request, LogDrain.objects.select_related("tenant"), code=code)
    if act not in ("resume", "delete"):
        raise Http404("No such action.")
    require(request, Action.MANAGE, drain)
    if act == "delete":
        drain.delete()
    elif act == "resume":
        resume(drain)
    record(request, drain.tenant, f"drain.{act}", drain.url)
    return redirect("drains")
