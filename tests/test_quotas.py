"""Per-tenant quotas: workers, deployments per hour, invocations per minute, payload size."""

import json
import time

import httpx
import pytest
from django.urls import reverse

from deployments.models import Deployment
from tenancy.models import Event, EventSubscription, Tenant
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import start_runtime, wait_for, within_one_minute
from .helpers import GREETER, build_now


def set_quota(tenant, **values):
    Tenant.objects.filter(pk=tenant.pk).update(**values)
    tenant.refresh_from_db()


def api_deploy(client, key, name):
    return client.post(
        "/api/workers", json.dumps({"name": name, "code": GREETER}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}",
    )  # fmt: skip


def test_worker_quota(owner_client, client, tenant):
    set_quota(tenant, max_workers=1)
    assert (
        owner_client.post(reverse("new-worker"), {"name": "one", "source": GREETER}).status_code
        == 302
    )
    refused = owner_client.post(reverse("new-worker"), {"name": "two", "source": GREETER})
    assert refused.status_code == 409 and "quota of 1 workers" in refused.content.decode()
    key = issue_key(tenant, "ci", ["deploy"])[1]
    response = api_deploy(client, key, "three")
    assert response.status_code == 409 and response.json()["error"]["code"] == "quota_exceeded"
    assert (
        api_deploy(client, key, "one").status_code == 202
    )  # a new version of an existing one is fine
    assert Worker.objects.count() == 1


def test_deployments_per_hour_answer_429_with_retry_after(client, owner_client, tenant):
    set_quota(tenant, max_deployments_per_hour=2)
    key = issue_key(tenant, "ci", ["deploy"])[1]
    assert api_deploy(client, key, "w").status_code == 202
    assert api_deploy(client, key, "w").status_code == 202
    refused = api_deploy(client, key, "w")
    assert refused.status_code == 429
    assert 3500 <= int(refused["Retry-After"]) <= 3601
    assert "2 deployments per hour" in refused.json()["error"]["message"]
    worker = Worker.objects.get(name="w")
    page = owner_client.post(reverse("redeploy", args=[worker.code]), {"source": GREETER})
    assert page.status_code == 429 and "2 deployments per hour" in page.content.decode()
    assert Deployment.objects.count() == 2


def test_usage_is_shown_to_members(owner_client, tenant):
    set_quota(tenant, max_workers=7)
    Worker.objects.create(tenant=tenant, name="a")
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "Usage and quotas" in page and "1 of 7" in page


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_invocations_per_minute_and_payload_size_in_the_data_plane(live_server, tenant):
    set_quota(tenant, max_invocations_per_minute=2, max_payload_bytes=100)
    EventSubscription.objects.create(tenant=tenant, url="https://hooks.example.org/",
                                     secret="whsec_c2VjcmV0", types=["quota.reached"])  # fmt: skip
    deployment = build_now(
        Worker.objects.create(tenant=tenant, name="limited", public=True), GREETER
    )
    # A runtime of its own that reports often (the suite's reports its usage hourly).
    proc, runtime = start_runtime(RUNTIME_PROCESSES="1", RUNTIME_CPU_REPORT_MS="300")
    try:
        url = f"{runtime}/d/{deployment.host}/api/invoke/hello"
        within_one_minute()
        too_big = httpx.post(url, content=json.dumps({"name": "x" * 200}), timeout=30)
        assert too_big.status_code == 413 and "100 bytes" in too_big.json()["error"]["message"]
        assert httpx.post(url, json={}, timeout=30).status_code == 200
        refused = httpx.post(url, json={}, timeout=30)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # The tenant's systems hear of it once (event quota.reached), however often refused.
        httpx.post(url, json={}, timeout=30)
        told = Event.objects.filter(tenant=tenant, type="quota.reached")
        wait_for(told.exists, 10, "the refusals to be told")
        time.sleep(1)
        assert told.count() == 1
        assert told.get().data["quota"] == "max_invocations_per_minute"
        assert "quota of 2 invocations a minute" in told.get().data["message"]
    finally:
        proc.stop()
