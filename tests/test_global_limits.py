"""Limits that hold across host processes and machines: two runtimes (separate processes on
their own ports, as two machines would be) count a tenant's quota and a deployment's calls
at once together, in Redis."""

import concurrent.futures
import time

import httpx
import pytest

from tenancy.models import Tenant
from workers.models import Worker

from .conftest import start_runtime
from .helpers import EDGE_CASES, build_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_runtimes(live_server):
    # Their quota minutes begin now (a shifted clock): one minute's quota is all in reach.
    offset = str(60_000 - int(time.time() * 1000) % 60_000)
    started = [
        start_runtime(RUNTIME_PROCESSES="1", RUNTIME_CLOCK_OFFSET_MS=offset) for _ in range(2)
    ]
    yield [url for _, url in started]
    for proc, _ in started:
        proc.stop()


def call(base: str, deployment, fn: str, body: dict) -> httpx.Response:
    return httpx.post(f"{base}/d/{deployment.host}/api/invoke/{fn}", json=body, timeout=30)


def test_a_tenants_quota_holds_across_two_runtimes(two_runtimes, tenant):
    Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=20)
    worker = Worker.objects.create(tenant=tenant, name="counted", public=True)
    deployment = build_now(worker, EDGE_CASES)
    answers = [call(two_runtimes[n % 2], deployment, "echo", {"n": n}) for n in range(40)]
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(served) == 20 and len(refused) == 20  # each runtime alone would have served 20
    assert {a.json()["error"]["code"] for a in refused} == {"rate_limited"}
    assert all(1 <= int(a.headers["retry-after"]) <= 60 for a in refused)
    # Both runtimes served and refused: the count is shared, not split.
    assert {two_runtimes[n % 2] for n, a in enumerate(answers) if a.status_code == 200} == set(
        two_runtimes
    )


def test_a_deployments_calls_at_once_hold_across_two_runtimes(two_runtimes, tenant):
    worker = Worker.objects.create(tenant=tenant, name="narrow", public=True, max_concurrency=2)
    deployment = build_now(worker, EDGE_CASES)
    for base in two_runtimes:  # both know the deployment and have started its isolate
        assert call(base, deployment, "echo", {}).status_code == 200
    time.sleep(0.5)  # the slots those calls took go back
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = [
            pool.submit(call, two_runtimes[n % 2], deployment, "nap", {"ms": 1200, "tag": str(n)})
            for n in range(6)
        ]
        answers = [f.result() for f in futures]
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 200, 429, 429, 429, 429]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 429} == {
        "too_many_concurrent_invocations"
    }
    time.sleep(0.5)
    # Once they are done, the slots are free again on either runtime.
    assert call(two_runtimes[1], deployment, "nap", {"ms": 1, "tag": "after"}).status_code == 200
