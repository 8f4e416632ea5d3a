"""Quotas on everything a tenant makes: each flood is refused at the tenant's quota with a
409 (a count), 429 (wait) or 413 (a size) that says the limit, while another tenant goes on
making the same things; operators see the figures in the admin."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from runs.lifecycle import accept
from runs.models import Run, Schedule
from runs.schedules import fire_due
from telemetry.models import LogDrain
from tenancy.quotas import QuotaExceeded
from workers.api_keys import issue_key
from workers.models import ApiKey, Worker, WorkerSecret

from .conftest import client_for, make_operator
from .helpers import ready_in_production

ready = ready_in_production


def api(tenant):
    key = issue_key(tenant, "ci", ["deploy", "read", "invoke"])[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def new_schedule(client, worker, payload):
    body = {"function": "hello", "cron": "* * * * *", "timeZone": "UTC", "payload": payload}
    url = f"/api/workers/{worker.code}/schedules"
    return client.post(url, json.dumps(body), "application/json")


def test_schedule_flood_stops_at_the_quota_and_large_payloads_are_refused(
    tenant, worker, other_tenant
):
    ready(worker)
    tenant.max_schedules = 3
    tenant.save()
    client = api(tenant)
    for _ in range(3):
        assert new_schedule(client, worker, {"n": 1}).status_code == 201
    refused = new_schedule(client, worker, {"n": 1})
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "quota_exceeded",
        "message": "This tenant has reached its quota of 3 schedules; remove one first, or ask "
        "the platform's operators for a larger quota.",
    }
    # The attack as tried: payloads of 200 KB each (the quota is 256 KiB by default; lower here).
    Schedule.objects.filter(tenant=tenant).delete()
    tenant.max_stored_payload_bytes = 100_000
    tenant.save()
    big = new_schedule(client, worker, {"blob": "x" * 200_000})
    assert big.status_code == 413
    assert big.json()["error"]["message"].startswith("The payload is 200012 bytes; a payload ")
    assert Schedule.objects.filter(tenant=tenant).count() == 0
    # Another tenant is not held by this one's quota.
    theirs = Worker.objects.create(tenant=other_tenant, name="theirs")
    ready(theirs)
    assert new_schedule(api(other_tenant), theirs, {"n": 1}).status_code == 201


def test_schedule_quota_in_the_portal_keeps_the_form(owner_client, tenant, worker):
    ready(worker)
    tenant.max_schedules = 0
    tenant.save()
    url = reverse("new-schedule", args=[worker.code])
    form = {"function": "hello", "cron": "*/5 * * * *", "time_zone": "UTC", "payload": "{}"}
    answer = owner_client.post(url, form)
    assert answer.status_code == 409
    assert "quota of 0 schedules" in answer.content.decode()
    assert not Schedule.objects.exists()


def test_api_key_flood_stops_at_the_quota_revoked_keys_do_not_count(tenant, owner_client):
    tenant.max_api_keys = 2
    tenant.save()
    issue_key(tenant, "one", ["read"])
    issue_key(tenant, "two", ["read"])
    page = owner_client.post(reverse("api-keys"), {"name": "three", "scopes": ["read"]})
    assert page.status_code == 409
    assert "quota of 2 API keys" in page.content.decode()
    assert ApiKey.objects.filter(tenant=tenant).count() == 2
    ApiKey.objects.filter(tenant=tenant, name="one").update(revoked_at="2026-01-01T00:00Z")
    again = owner_client.post(reverse("api-keys"), {"name": "three", "scopes": ["read"]})
    assert again.status_code == 200 and ApiKey.objects.filter(name="three").exists()


def test_drain_flood_stops_at_the_quota(tenant, owner_client):
    tenant.max_drains = 1
    tenant.save()
    LogDrain.objects.create(tenant=tenant, url="https://logs.example.org/", secret="s")
    answer = owner_client.post(reverse("drains"), {"url": "https://more.example.org/"})
    assert answer.status_code == 409
    assert "quota of 1 log drains" in answer.content.decode()
    assert LogDrain.objects.filter(tenant=tenant).count() == 1


def test_secret_flood_stops_at_the_quota_changing_one_still_works(tenant, worker, owner_client):
    tenant.max_secrets = 2
    tenant.save()
    url = reverse("worker-secrets", args=[worker.code])
    assert owner_client.post(url, {"name": "A", "value": "1"}).status_code == 302
    assert owner_client.post(url, {"name": "B", "value": "2"}).status_code == 302
    refused = owner_client.post(url, {"name": "C", "value": "3"})
    assert refused.status_code == 409 and "quota of 2 secrets" in refused.content.decode()
    assert owner_client.post(url, {"name": "A", "value": "new"}).status_code == 302
    assert sorted(WorkerSecret.objects.values_list("name", flat=True)) == ["A", "B"]


def test_waiting_run_flood_is_told_to_wait_and_stored_payloads_are_bounded(
    client, tenant, worker, other_tenant
):
    deployment = ready(worker)
    tenant.max_waiting_runs = 2
    tenant.max_stored_payload_bytes = 1000
    tenant.save()
    url = f"/internal/runtime/deployments/{deployment.code}/runs"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.RUNTIME_TOKEN}"}

    def hand_over(payload="null"):
        body = json.dumps({"function": "hello", "payload": payload})
        return client.post(url, body, "application/json", **auth)

    assert hand_over().status_code == 202
    assert hand_over().status_code == 202
    flooded = hand_over()
    assert flooded.status_code == 429 and flooded["Retry-After"] == "30"
    assert flooded.json()["error"]["message"] == (
        "This tenant has reached its quota of 2 runs waiting (queued or to be retried); "
        "retry once some have run, or ask the platform's operators for a larger quota."
    )
    Run.objects.filter(tenant=tenant).update(status="succeeded")
    large = hand_over(json.dumps("x" * 2000))
    assert large.status_code == 413 and "at most 1000 bytes" in large.json()["error"]["message"]
    assert Run.objects.filter(tenant=tenant).count() == 2
    # Another tenant's runs are accepted meanwhile.
    theirs = ready(Worker.objects.create(tenant=other_tenant, name="theirs"))
    assert accept(theirs, "hello", "null")[1]


def test_a_schedule_at_the_waiting_quota_counts_a_missed_firing(tenant, worker):
    from datetime import timedelta

    from django.utils import timezone

    deployment = ready(worker)
    tenant.max_waiting_runs = 1
    tenant.save()
    accept(deployment, "hello", "null")
    with pytest.raises(QuotaExceeded):
        accept(deployment, "hello", "null")
    # Yearly: no other firing falls between the one due and now, whatever the clock says.
    due = Schedule.objects.create(
        tenant=tenant, worker=worker, function="hello", cron="0 0 1 1 *",
        next_fire_at=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip
    assert fire_due() == 0
    due.refresh_from_db()
    assert due.missed == 1 and due.last_fired_at is None
    assert Run.objects.filter(tenant=tenant).count() == 1


def test_operators_see_every_quota_in_use_in_the_admin(tenant, worker):
    ready(worker)
    Schedule.objects.create(tenant=tenant, worker=worker, function="hello", cron="* * * * *")
    operator = make_operator("op")
    page = client_for(Client, operator).get(f"/admin/tenancy/tenant/{tenant.pk}/change/")
    text = page.content.decode()
    assert "Workers: 1 of 100" in text and "Schedules: 1 of 20" in text
    assert "Log drains: 0 of 5" in text and "API keys: 0 of 50" in text
    assert 'name="max_schedules"' in text and 'name="max_stored_payload_bytes"' in text


def test_members_see_their_quotas_on_the_dashboard(tenant, worker, owner_client):
    ready(worker)
    Schedule.objects.create(tenant=tenant, worker=worker, function="hello", cron="* * * * *")
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "<td>Schedules</td><td>1 of 20</td>" in page
    assert "<td>Runs waiting (queued or to be retried)</td><td>0 of 1000</td>" in page
