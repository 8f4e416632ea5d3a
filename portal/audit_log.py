"""Tenant-wide pages: the audit log."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from tenancy.access import Action
from tenancy.audit import audit_csv
from tenancy.models import AuditEvent

from .access import require


@login_required
def audit_log(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    require(request, Action.MANAGE, request.tenant, viewing=True)
    events = AuditEvent.objects.filter(tenant=request.tenant)
    if request.GET.get("format") == "csv":
        return audit_csv(events, f"audit-{request.tenant.slug}.csv")
    return render(request, "audit.html", {"events": events[:200]})
