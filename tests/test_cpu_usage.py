"""CPU time is charged to the tenant whose sandbox used it: hosts report it, each report
counts once, and it shows in the day's usage (portal, CSV, API)."""

import json

from django.conf import settings
from django.test import Client
from django.urls import reverse

from telemetry.models import CpuCharge, UsageDay
from telemetry.usage import meter
from workers.api_keys import issue_key


def report(client, body):
    return client.post(
        "/internal/runtime/usage", json.dumps(body), "application/json",
        HTTP_AUTHORIZATION=f"Bearer {settings.RUNTIME_TOKEN}",
    )  # fmt: skip


def test_a_hosts_cpu_report_counts_once_and_shows_in_usage(
    client, tenant, other_tenant, owner_client
):
    body = {"id": "r1", "cpu": {str(tenant.pk): 1500.0, str(other_tenant.pk): 250.0, "999999": 5}}
    assert report(client, body).json() == {"counted": True}
    assert report(client, body).json() == {"counted": False}  # sent again: its answer was lost
    assert report(client, {**body, "id": "r2", "cpu": {str(tenant.pk): 500.0}}).status_code == 200
    assert CpuCharge.objects.get(tenant=tenant).ms == 2000.0
    meter(days=1)
    assert UsageDay.objects.get(tenant=tenant).cpu_seconds == 2.0
    assert UsageDay.objects.get(tenant=other_tenant).cpu_seconds == 0.25
    page = owner_client.get(reverse("usage")).content.decode()
    assert "<th>CPU (s)</th>" in page and "<td>2.0</td>" in page
    key = issue_key(tenant, "ci", ["read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/usage?days=1").json()
    assert api["days"][0]["cpuSeconds"] == 2.0


def test_a_report_without_the_runtime_token_is_not_found(client, tenant):
    answer = client.post("/internal/runtime/usage", "{}", "application/json")
    assert answer.status_code == 404 and not CpuCharge.objects.exists()


def test_a_malformed_report_says_what_is_expected(client):
    answer = report(client, {"cpu": [1, 2]})
    assert answer.status_code == 400
    assert (
        answer.json()["error"]["message"]
        == 'Bad report: expected {"id": "...", "cpu": {"<tenant>": <ms>}, "limited": []}.'
    )
