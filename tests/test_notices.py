"""Mail about events a member asked to hear about: chosen per tenant on Your account,
Notifications; sent in the tenant's brand through a real SMTP server (started here) with a
link to the thing in the portal; only to members who still belong and still want it; at
most NOTICE_MAILS_PER_HOUR each; and, end to end, a build that fails reaches its watcher's
inbox through the real Celery worker."""

import re

import pytest
from celery import current_app
from django.test import Client
from django.urls import reverse

from deployments.models import Deployment
from telemetry.tasks import mail_notices
from tenancy.events import emit
from tenancy.models import Membership

from .conftest import client_for, wait_for
from .test_accounts import bodies

pytestmark = pytest.mark.django_db

FAILED = {"worker": "greeter", "deployment": {
    "id": "6f1c1c55-3e1a-4a59-9a55-6a8f2f7f6b10", "shortId": "6f1c1c55", "status": "error",
    "url": "http://greeter--acme.localhost", "error": "main.ts:3:7 - error TS2322",
}}  # fmt: skip


def choose(client: Client, membership: Membership, *types: str):
    return client.post(reverse("notifications"), {f"{membership.pk}:{t}": "on" for t in types})


def test_a_member_is_mailed_about_what_they_chose_in_the_tenants_brand(
    inbox, tenant, other_tenant, developer, monkeypatch, django_capture_on_commit_callbacks
):
    tenant.brand_name = "Acme Cloud"
    tenant.save()
    Membership.objects.create(user=developer, tenant=other_tenant, role="viewer")
    here = Membership.objects.get(user=developer, tenant=tenant)
    browser = client_for(Client, developer)
    page = browser.get(reverse("notifications")).content.decode()
    assert "Acme" in page and "Globex" in page and "deployment.failed" in page
    saved = choose(browser, here, "deployment.failed", "run.dead")
    assert saved.status_code == 302
    here.refresh_from_db()
    assert here.notify == ["deployment.failed", "run.dead"]
    assert (
        f'name="{here.pk}:deployment.failed" checked'
        in browser.get(reverse("notifications")).content.decode()
    )
    # What the platform hands to its Celery worker when a build fails, and what it mails.
    sent = []
    monkeypatch.setattr(
        current_app, "send_task", lambda name, args=None, **kw: sent.append((name, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        emit(tenant.pk, "deployment.failed", FAILED)
        emit(tenant.pk, "deployment.ready", FAILED)  # not chosen: nobody is mailed
        emit(other_tenant.pk, "deployment.failed", FAILED)  # chosen in Acme only
    assert sent == [("telemetry.tasks.mail_notices",
                     [tenant.pk, "deployment.failed", FAILED, [developer.pk]])]  # fmt: skip
    assert mail_notices(*sent[0][1]) == 1
    [mail] = inbox.to(developer.email)
    assert mail["Subject"] == "[Acme Cloud] greeter: a build failed"
    text, html = bodies(mail)
    assert "main.ts:3:7 - error TS2322" in text and "Deployment: 6f1c1c55" in text
    assert re.search(r"See it: http://\S+/deployments/6f1c1c55-3e1a-4a59-9a55-6a8f2f7f6b10/", text)
    assert "/accounts/notifications/" in text and "Acme Cloud" in html
    # Gone from the tenant, or no longer wanting it: not mailed.
    choose(browser, here)
    assert mail_notices(tenant.pk, "deployment.failed", FAILED, [developer.pk]) == 0
    here.notify = ["deployment.failed"]
    here.save()
    here.delete()
    assert mail_notices(tenant.pk, "deployment.failed", FAILED, [developer.pk]) == 0


def test_a_storm_of_failures_is_not_a_storm_of_mail(inbox, tenant, developer, settings):
    settings.NOTICE_MAILS_PER_HOUR = 3
    Membership.objects.filter(user=developer).update(notify=["run.dead"])
    dead = {"worker": "greeter", "run": {"id": "8a0e2a8e-19c4-4bd0-9d73-3f0f3f7d2e11",
                                         "function": "charge", "status": "dead", "attempts": 3}}  # fmt: skip
    mailed = sum(mail_notices(tenant.pk, "run.dead", dead, [developer.pk]) for _ in range(10))
    assert mailed == 3 and len(inbox.to(developer.email)) == 3
    assert "/runs/8a0e2a8e-19c4-4bd0-9d73-3f0f3f7d2e11/" in bodies(inbox.to(developer.email)[0])[0]


def test_an_outsider_cannot_choose_for_a_tenant_they_are_not_in(tenant, developer, outsider):
    here = Membership.objects.get(user=developer)
    choose(client_for(Client, outsider), here, "deployment.failed")
    here.refresh_from_db()
    assert here.notify == []


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_failed_build_reaches_its_watchers_inbox_through_celery(
    inbox, tenant, worker, developer, start_worker, monkeypatch
):
    from deployments.deploy import deploy

    from .helpers import TYPE_ERROR

    # The Celery worker is another process: it sends through the same SMTP server.
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{inbox.port}")
    monkeypatch.setenv("NOTICE_MAILS_PER_HOUR", "20")
    Membership.objects.filter(user=developer).update(notify=["deployment.failed"])
    start_worker()
    deployment = deploy(worker, TYPE_ERROR, developer)
    wait_for(lambda: inbox.to(developer.email), 60, "the notice of the failed build")
    [mail] = inbox.to(developer.email)
    assert mail["Subject"] == "[Functions] greeter: a build failed"
    text, _ = bodies(mail)
    assert f"/deployments/{deployment.code}/" in text
    assert Deployment.objects.get(pk=deployment.pk).status == Deployment.Status.ERROR
