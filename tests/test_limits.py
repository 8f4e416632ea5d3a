"""Runtime limits: platform defaults, overridden per tenant and then per worker, enforced
by the runtime (and written into Vercel deployments)."""

import httpx
import pytest
from django.conf import settings

from tenancy.limits import effective_limits
from workers.models import Worker

from .helpers import EDGE_CASES, build_now


def auth():
    return {"HTTP_AUTHORIZATION": f"Bearer {settings.RUNTIME_TOKEN}"}


def test_a_worker_override_beats_its_tenants_which_beats_the_platforms(tenant, settings):
    settings.RUNTIME_MEMORY_MB = 128
    worker = Worker.objects.create(tenant=tenant, name="limited")
    assert effective_limits(worker)["memory_mb"] == 128
    tenant.memory_mb = 64
    tenant.max_log_lines = 10
    tenant.save()
    worker.refresh_from_db()
    assert effective_limits(worker)["memory_mb"] == 64
    worker.memory_mb = 32
    worker.save()
    limits = effective_limits(worker)
    assert limits["memory_mb"] == 32 and limits["max_log_lines"] == 10
    assert limits["timeout_seconds"] == settings.RUNTIME_TIMEOUT_SECONDS


@pytest.mark.slow  # builds with Deno
def test_the_runtime_learns_the_limits_of_each_deployment(client, tenant):
    worker = Worker.objects.create(tenant=tenant, name="limited", timeout_seconds=0.5)
    tenant.max_concurrency = 3
    tenant.save()
    deployment = build_now(worker, EDGE_CASES)
    body = client.get(f"/internal/runtime/hosts/{deployment.host}", **auth()).json()
    assert body["timeoutMs"] == 500 and body["maxConcurrency"] == 3
    assert body["memoryMb"] == settings.RUNTIME_MEMORY_MB


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_workers_own_timeout_is_enforced(runtime, tenant):
    strict = Worker.objects.create(tenant=tenant, name="strict", public=True, timeout_seconds=0.5)
    relaxed = Worker.objects.create(tenant=tenant, name="relaxed", public=True)
    for worker, expected in ((strict, 504), (relaxed, 200)):
        deployment = build_now(worker, EDGE_CASES)
        answer = httpx.post(
            f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/nap",
            json={"ms": 1000, "tag": "x"},
            timeout=30,
        )
        assert answer.status_code == expected, answer.text
        if expected == 504:
            assert "within 500 ms" in answer.json()["error"]["message"]
