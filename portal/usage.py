"""The tenant's usage per day, for its owners and admins: a table of the last days and a CSV
of any span (the figures operators bill from)."""

import csv
from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from telemetry.models import UsageDay
from telemetry.usage import FIELDS
from tenancy.access import Action

from .access import require

HEADERS = ["day", *FIELDS]


def day_param(text: str, default: date) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return default


@login_required
def usage_page(request):
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    require(request, Action.MANAGE, tenant, viewing=True)
    today = timezone.now().date()
    since = day_param(request.GET.get("since", ""), today - timedelta(days=30))
    until = day_param(request.GET.get("until", ""), today)
    days = list(
        UsageDay.objects.filter(tenant=tenant, day__gte=since, day__lte=until).order_by("-day")
    )
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="usage-{tenant.slug}-{since}-{until}.csv"'
        )
        writer = csv.writer(response)
        writer.writerow(HEADERS)
        for d in sorted(days, key=lambda d: d.day):
            writer.writerow([d.day.isoformat(), *(round(getattr(d, f), 3) for f in FIELDS)])
        return response
    totals = {f: sum(getattr(d, f) for d in days) for f in FIELDS}
    totals["kv_bytes"] = max((d.kv_bytes for d in days), default=0)  # held, not added up
    context = {"days": days, "totals": totals, "since": since, "until": until}
    # How fresh the figures are: when the meter last added them up.
    context["as_of"] = max((d.updated for d in days), default=None)
    return render(request, "usage.html", context)
