"""One way to show time: absolute in the user's time zone, named, with the time since."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.urls import reverse

from deployments.models import Deployment

from .helpers import GREETER, create_deployment


def test_times_follow_the_users_zone_and_say_which_it_is(owner_client, worker):
    moment = datetime(2026, 11, 29, 12, 0, 5, tzinfo=ZoneInfo("UTC"))
    deployment = create_deployment(worker, GREETER)
    Deployment.objects.filter(pk=deployment.pk).update(created=moment)
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert (
        '<time datetime="2026-11-29T12:00:05+00:00"' in page and "2026-11-29 12:00:05 UTC" in page
    )
    assert " ago)" in page

    chosen = owner_client.post(
        reverse("time-zone"), {"time_zone": "Asia/Tokyo", "next": reverse("dashboard")}
    )
    assert chosen.status_code == 302 and chosen["Location"] == reverse("dashboard")
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert (
        '<time datetime="2026-11-29T21:00:05+09:00"' in page and "2026-11-29 21:00:05 JST" in page
    )
    # The API keeps ISO 8601 with the offset, whatever the portal shows.
    api = owner_client.get(f"/api/deployments/{deployment.code}").json()
    assert api["createdAt"] in ("2026-11-29T12:00:05Z", "2026-11-29T12:00:05+00:00")


def test_an_unknown_zone_or_a_foreign_redirect_is_refused(owner_client):
    owner_client.post(reverse("time-zone"), {"time_zone": "Mars/Olympus"})
    assert "UTC" in owner_client.get(reverse("dashboard")).content.decode()
    away = owner_client.post(
        reverse("time-zone"), {"time_zone": "UTC", "next": "https://elsewhere.example/"}
    )
    assert away["Location"] == reverse("dashboard")


def test_the_admin_writes_times_as_the_portal_does(db, tenant):
    from django.test import Client

    from tenancy.models import AuditEvent

    from .conftest import client_for, make_operator

    AuditEvent.objects.create(tenant=tenant, tenant_slug=tenant.slug, actor_label="x", action="a")
    operator = make_operator("op")
    page = client_for(Client, operator).get("/admin/tenancy/auditevent/").content.decode()
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", page), "ISO-like, zone named"
    assert " a.m." not in page and " p.m." not in page
