"""Private workers in the data plane: API keys with the invoke scope, checked by the runtime,
and revocation, suspension and deletion taking effect within seconds, without a restart."""

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from deployments.deploy import delete_worker
from tenancy.models import Tenant
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import wait_for
from .helpers import GREETER, build_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def private(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="private")
    deployment = build_now(worker, GREETER)
    return worker, deployment


def call(deployment, key=None, host=None):
    headers = {"authorization": f"Bearer {key}"} if key else {}
    target = host or deployment.host
    return httpx.post(
        f"{settings.RUNTIME_URL}/d/{target}/api/invoke/hello", json={}, headers=headers, timeout=30
    )


def test_private_worker_needs_a_key_with_the_invoke_scope(private, tenant, other_tenant):
    worker, deployment = private
    response = call(deployment)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]["message"]

    invoke_key = issue_key(tenant, "caller", ["invoke"])[1]
    assert call(deployment, invoke_key).status_code == 200
    assert call(deployment, invoke_key, host=worker.host).status_code == 200  # production URL too

    read_key = issue_key(tenant, "reader", ["read"])[1]
    assert call(deployment, read_key).status_code == 403
    theirs = issue_key(other_tenant, "theirs", ["invoke"])[1]
    assert call(deployment, theirs).status_code == 401
    assert call(deployment, invoke_key[:-3] + "abc").status_code == 401


def test_public_worker_answers_anyone(private):
    worker, deployment = private
    Worker.objects.filter(pk=worker.pk).update(public=True)
    wait_for(lambda: call(deployment).status_code == 200, 5, "the worker to turn public", 0.2)


def test_revoked_key_stops_within_5_seconds(private, tenant):
    worker, deployment = private
    key, secret = issue_key(tenant, "caller", ["invoke"])
    assert call(deployment, secret).status_code == 200
    key.revoked_at = timezone.now()
    key.save()
    wait_for(
        lambda: call(deployment, secret).status_code == 401, 5, "the revocation to take effect", 0.2
    )


def test_suspended_tenant_stops_within_5_seconds(private, tenant):
    worker, deployment = private
    secret = issue_key(tenant, "caller", ["invoke"])[1]
    assert call(deployment, secret).status_code == 200
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    wait_for(
        lambda: call(deployment, secret).status_code == 403, 5, "the suspension to take effect", 0.2
    )
    refused = call(deployment, secret).json()["error"]
    assert refused["code"] == "tenant_suspended" and "suspended" in refused["message"]


def test_deleted_worker_stops_within_5_seconds(private, tenant):
    worker, deployment = private
    secret = issue_key(tenant, "caller", ["invoke"])[1]
    assert call(deployment, secret).status_code == 200
    # As the portal and the API delete: holding off the ingest, so the first call's record,
    # arriving meanwhile, cannot land on a deployment being deleted.
    delete_worker(worker)
    wait_for(
        lambda: call(deployment, secret).status_code == 404, 5, "the deletion to take effect", 0.2
    )
