"""Times are shown in the user's time zone (a setting kept in the session; UTC until
chosen), always named, with the time since beside them."""

import zoneinfo
from functools import cache

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

SESSION_KEY = "time_zone"


@cache
def zones() -> list[str]:
    return sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


class TimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        name = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
        if name in zones():
            timezone.activate(zoneinfo.ZoneInfo(name))
        else:
            timezone.deactivate()  # UTC, the platform's
        return self.get_response(request)


@login_required
def time_zone(request):
    if request.method == "POST" and request.POST.get("time_zone") in zones():
        request.session[SESSION_KEY] = request.POST["time_zone"]
        back = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect("dashboard")
    current = request.session.get(SESSION_KEY, "UTC")
    return render(request, "time_zone.html", {"zones": zones(), "current": current})
