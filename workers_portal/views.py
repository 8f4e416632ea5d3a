"""Tenant-wide pages: the audit log."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from .access import require_admin
from .models import AuditEvent


@login_required
def audit_log(request):
    if request.tenant is None:
        return render(request, "workers/no_tenant.html", status=404)
    require_admin(request.user, request.tenant)
    events = AuditEvent.objects.filter(tenant=request.tenant)[:200]
    return render(request, "audit.html", {"events": events})
