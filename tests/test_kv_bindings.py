"""What a deployment's code reaches through ctx.kv and ctx.enqueue, at the control plane: only
the namespaces bound to that deployment, of its own tenant, within the tenant's per-minute
quotas, counted in its usage; and runs enqueued for later."""

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from deployments.generator import ingest_token
from kv import store
from kv.models import Binding, Namespace
from runs.models import Run
from telemetry.models import UsageDay
from telemetry.usage import meter
from tenancy.models import Tenant
from workers.models import Worker

from .helpers import GREETER, create_deployment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_minute_counters():
    from deployments.announce import redis_client

    client = redis_client()
    for pattern in ("kvops:*", "enq:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


def bound(worker, namespace, name="COUNTERS"):
    """A ready deployment of `worker` made while `namespace` was bound as `name`."""
    Binding.objects.get_or_create(worker=worker, namespace=namespace, name=name)
    deployment = create_deployment(worker, GREETER)
    deployment.kv_bindings = {b.name: str(b.namespace.code) for b in worker.kv_bindings.all()}
    deployment.status = "ready"
    deployment.functions = ["greet", "record"]
    deployment.save()
    return deployment


def runtime_asks(settings, deployment, body, path="kv"):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {settings.RUNTIME_TOKEN}")
    url = f"/internal/runtime/deployments/{deployment.code}/{path}"
    return client.post(url, json.dumps(body), content_type="application/json")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_operations_on_a_bound_namespace(settings, worker):
    ns = Namespace.objects.create(tenant=worker.tenant, name="counters")
    d = bound(worker, ns)
    put = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "put", "key": "a", "value": b64("1"),
                                     "metadata": {"by": "test"}, "ttl": 60})  # fmt: skip
    assert put.status_code == 200 and put.json()["ok"] is True and put.json()["version"] == 1
    got = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "get", "key": "a"}).json()
    assert base64.b64decode(got["value"]) == b"1" and got["metadata"] == {"by": "test"}
    assert got["expiresAt"] > (timezone.now() + timedelta(seconds=50)).timestamp() * 1000
    # Compare-and-set: only against the version there now.
    stale = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "put", "key": "a",
                                       "value": b64("2"), "ifVersion": 0}).json()  # fmt: skip
    assert stale == {"ok": False, "version": 1}
    fresh = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "put", "key": "a",
                                       "value": b64("2"), "ifVersion": 1}).json()  # fmt: skip
    assert fresh["ok"] is True and fresh["version"] == 2
    for key in ("b:1", "b:2", "c"):
        runtime_asks(
            settings, d, {"binding": "COUNTERS", "op": "put", "key": key, "value": b64("x")}
        )
    listed = runtime_asks(
        settings, d, {"binding": "COUNTERS", "op": "list", "prefix": "b:", "limit": 1}
    ).json()
    assert [k["key"] for k in listed["keys"]] == ["b:1"] and listed["cursor"]
    rest = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "list", "prefix": "b:",
                                      "cursor": listed["cursor"]}).json()  # fmt: skip
    assert [k["key"] for k in rest["keys"]] == ["b:2"] and rest["cursor"] is None
    assert runtime_asks(
        settings, d, {"binding": "COUNTERS", "op": "delete", "key": "c"}
    ).json() == {"deleted": True}
    assert runtime_asks(settings, d, {"binding": "COUNTERS", "op": "get", "key": "c"}).json() == {
        "found": False
    }
    # Bad operations are told, and change nothing.
    huge = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "put", "key": "h",
                                      "value": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()})  # fmt: skip
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    odd = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "explode", "key": "a"})
    assert odd.status_code == 400 and "unknown op" in odd.json()["error"]["message"]
    assert store.get(ns, "a").version == 2 and store.get(ns, "h") is None


def test_a_deployment_reaches_only_the_namespaces_bound_to_it(settings, worker, other_tenant):
    mine = Namespace.objects.create(tenant=worker.tenant, name="mine")
    theirs = Namespace.objects.create(tenant=other_tenant, name="theirs")
    store.put(theirs, "secret", b"of another tenant")
    d = bound(worker, mine)
    # A name it was not deployed with reaches nothing, whatever exists.
    missing = runtime_asks(settings, d, {"binding": "OTHER", "op": "get", "key": "secret"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "kv_binding_not_found"
    # A binding made after the deployment is not in it.
    later = Namespace.objects.create(tenant=worker.tenant, name="later")
    Binding.objects.create(worker=worker, namespace=later, name="LATER")
    assert (
        runtime_asks(settings, d, {"binding": "LATER", "op": "get", "key": "x"}).status_code == 404
    )
    # A snapshot that names another tenant's namespace (forged in the database) reaches nothing.
    forged_deployment = bound(worker, mine)
    forged_deployment.kv_bindings = {"COUNTERS": str(theirs.code)}
    forged_deployment.save()
    forged = runtime_asks(
        settings, forged_deployment, {"binding": "COUNTERS", "op": "get", "key": "secret"}
    )
    assert forged.status_code == 404
    # Without the runtime's token, or with another deployment's credential: not found.
    anyone = Client().post(
        f"/internal/runtime/deployments/{d.code}/kv", "{}", content_type="application/json"
    )
    assert anyone.status_code == 404
    other_worker = Worker.objects.create(tenant=other_tenant, name="other")
    other = bound(other_worker, theirs)
    wrong = Client(HTTP_AUTHORIZATION=f"Bearer {ingest_token(other)}").post(
        f"/internal/deployments/{d.code}/kv",
        json.dumps({"binding": "COUNTERS", "op": "get", "key": "secret"}),
        content_type="application/json",
    )
    assert wrong.status_code == 404 and "of another tenant" not in wrong.content.decode()


def test_a_suspended_tenant_reads_and_writes_nothing(settings, worker):
    ns = Namespace.objects.create(tenant=worker.tenant, name="counters")
    d = bound(worker, ns)
    Tenant.objects.filter(pk=worker.tenant_id).update(status="suspended")
    refused = runtime_asks(
        settings, d, {"binding": "COUNTERS", "op": "put", "key": "a", "value": b64("1")}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "tenant_suspended"
    queued = runtime_asks(settings, d, {"function": "record", "payload": "{}"}, path="enqueue")
    assert queued.status_code == 403 and not Run.objects.exists()
    assert store.get(ns, "a") is None


def test_operations_per_minute_are_limited_per_tenant(settings, worker, other_tenant):
    settings.QUOTA_MAX_KV_OPERATIONS_PER_MINUTE = 3
    ns = Namespace.objects.create(tenant=worker.tenant, name="counters")
    d = bound(worker, ns)
    for _ in range(3):
        assert (
            runtime_asks(settings, d, {"binding": "COUNTERS", "op": "get", "key": "a"}).status_code
            == 200
        )
    over = runtime_asks(settings, d, {"binding": "COUNTERS", "op": "get", "key": "a"})
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited"
    assert (
        1 <= int(over["Retry-After"]) <= 60
        and "key-value operations quota (3 a minute)" in over.json()["error"]["message"]
    )
    # Another tenant's code is not slowed by it.
    theirs = Namespace.objects.create(tenant=other_tenant, name="theirs")
    other = bound(Worker.objects.create(tenant=other_tenant, name="other"), theirs)
    assert (
        runtime_asks(settings, other, {"binding": "COUNTERS", "op": "get", "key": "a"}).status_code
        == 200
    )


def test_code_enqueues_runs_for_now_later_and_on_another_worker(settings, worker, other_tenant):
    ns = Namespace.objects.create(tenant=worker.tenant, name="counters")
    d = bound(worker, ns)
    now = runtime_asks(
        settings, d, {"function": "record", "payload": '{"note": "a"}'}, path="enqueue"
    )
    assert now.status_code == 202, now.content
    run = Run.objects.get(code=now.json()["runId"])
    assert run.trigger == "enqueue" and run.deployment == d and run.payload == '{"note": "a"}'
    later = runtime_asks(settings, d, {"function": "record", "payload": "null", "delay": 3600,
                                       "idempotencyKey": "k1"}, path="enqueue").json()  # fmt: skip
    delayed = Run.objects.get(code=later["runId"])
    assert delayed.next_attempt_at > timezone.now() + timedelta(minutes=59)
    again = runtime_asks(settings, d, {"function": "record", "payload": "null", "delay": 3600,
                                       "idempotencyKey": "k1"}, path="enqueue").json()  # fmt: skip
    assert again["runId"] == later["runId"] and again["created"] is False
    # Another worker of the tenant: its production.
    mailer = Worker.objects.create(tenant=worker.tenant, name="mailer")
    production = bound(mailer, ns)
    mailer.production = production
    mailer.save()
    there = runtime_asks(
        settings, d, {"function": "greet", "payload": "{}", "worker": "mailer"}, path="enqueue"
    )
    assert (
        there.status_code == 202
        and Run.objects.get(code=there.json()["runId"]).deployment == production
    )
    # Never another tenant's worker, nor a function that is not there.
    outsider_worker = Worker.objects.create(tenant=other_tenant, name="theirs")
    outsider_worker.production = bound(
        outsider_worker, Namespace.objects.create(tenant=other_tenant, name="x")
    )
    outsider_worker.save()
    across = runtime_asks(
        settings, d, {"function": "greet", "payload": "{}", "worker": "theirs"}, path="enqueue"
    )
    assert across.status_code == 404
    nothing = runtime_asks(settings, d, {"function": "nope", "payload": "{}"}, path="enqueue")
    assert nothing.status_code == 404 and nothing.json()["error"]["code"] == "function_not_found"
    too_far = runtime_asks(
        settings, d, {"function": "record", "payload": "{}", "delay": 10**9}, path="enqueue"
    )
    assert too_far.status_code == 400 and "30 days" in too_far.json()["error"]["message"]
    assert Run.objects.filter(tenant=other_tenant).count() == 0


def test_enqueues_per_minute_are_limited(settings, worker):
    settings.QUOTA_MAX_ENQUEUES_PER_MINUTE = 2
    d = bound(worker, Namespace.objects.create(tenant=worker.tenant, name="counters"))
    codes = [runtime_asks(settings, d, {"function": "record", "payload": "{}"}, path="enqueue").status_code
             for _ in range(3)]  # fmt: skip
    assert codes == [202, 202, 429] and Run.objects.count() == 2


def test_operations_and_enqueued_runs_are_in_the_usage_days(settings, worker, client):
    ns = Namespace.objects.create(tenant=worker.tenant, name="counters")
    d = bound(worker, ns)
    store.put(ns, "k", b"12345")
    # A host reports what its tenants' code did, cached reads included; once per report.
    report = {
        "id": str(uuid.uuid4()),
        "cpu": {},
        "kv": {str(worker.tenant_id): [40, 2]},
        "limited": [],
    }
    host = Client(HTTP_AUTHORIZATION=f"Bearer {settings.RUNTIME_TOKEN}")
    for _ in range(2):
        host.post("/internal/runtime/usage", json.dumps(report), content_type="application/json")
    # A generated (Vercel) deployment's operations are counted where they are served.
    own = Client(HTTP_AUTHORIZATION=f"Bearer {ingest_token(d)}")
    own.post(f"/internal/deployments/{d.code}/kv", json.dumps({"binding": "COUNTERS", "op": "get", "key": "k"}),
             content_type="application/json")  # fmt: skip
    own.post(f"/internal/deployments/{d.code}/enqueue", json.dumps({"function": "record", "payload": "{}"}),
             content_type="application/json")  # fmt: skip
    meter()
    day = UsageDay.objects.get(tenant=worker.tenant)
    assert (day.kv_reads, day.kv_writes, day.queue_messages) == (41, 2, 1)
    assert day.kv_bytes == store.held(worker.tenant)[1] > 5
