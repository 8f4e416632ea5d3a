"""A generated (Vercel) deployment's calls count against the tenant's invocations per minute
and the deployment's calls at once where the runtime's hosts count theirs (one Redis, the
same keys and scripts), so one quota and one limit hold across both back ends."""

import pytest
from django.test import Client

from deployments.generator import ingest_token
from tenancy.models import Tenant
from workers.models import Worker

from .helpers import GREETER, create_deployment

pytestmark = pytest.mark.django_db


def test_calls_take_leases_within_the_quota_and_the_limit_at_once(tenant, other_tenant):
    Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=3)
    worker = Worker.objects.create(tenant=tenant, name="edge", max_concurrency=1)
    deployment = create_deployment(worker, GREETER)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {ingest_token(deployment)}")
    url = f"/internal/deployments/{deployment.code}/calls"
    first = api.post(url)
    assert first.status_code == 200 and first.json()["lease"].startswith("call-")
    # One at a time: the second waits for the first to end.
    busy = api.post(url)
    assert busy.status_code == 429 and busy["Retry-After"] == "1"
    assert busy.json()["error"]["code"] == "too_many_concurrent_invocations"
    # The lease goes back with the call's record.
    record = {"invocations": [], "logs": []}
    ingest = f"/internal/deployments/{deployment.code}/ingest"
    given = api.post(ingest, record, content_type="application/json",
                     HTTP_X_CALL_LEASE=first.json()["lease"])  # fmt: skip
    assert given.status_code == 200
    second = api.post(url)
    assert second.status_code == 200
    api.post(ingest, record, content_type="application/json",
             HTTP_X_CALL_LEASE=second.json()["lease"])  # fmt: skip
    # Three a minute (the refused one counted too, as a host counts what it was granted).
    over = api.post(url)
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
    assert 0 < int(over["Retry-After"]) <= 60
    # Another deployment's credential, none, or a suspended tenant: nothing taken.
    theirs = create_deployment(Worker.objects.create(tenant=other_tenant, name="t"), GREETER)
    stranger = Client(HTTP_AUTHORIZATION=f"Bearer {ingest_token(theirs)}")
    assert stranger.post(url).status_code == 404 and Client().post(url).status_code == 404
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    assert api.post(url).json()["error"]["code"] == "tenant_suspended"
    assert api.get(url).status_code == 405
