"""Plain settings and the context a call gets: settings shown to members (secrets never),
a name that is one or the other, each deployment keeping the values it was made with (the
diff shows what changed), and a real call reading ctx.env and ctx.requestId, typed with the
platform's declarations, through the runtime."""

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from deployments.deploy import deploy, snapshot_secrets, snapshot_settings
from deployments.diff import compare
from deployments.tasks import build_deployment
from telemetry.models import LogEntry
from tenancy.models import AuditEvent
from workers.api_keys import issue_key
from workers.models import Worker, WorkerSecret
from workers.secrets import encrypt

from .conftest import client_for, wait_for
from .helpers import CONTEXT, GREETER, create_deployment


def as_deploy_makes_it(worker, source):
    """A deployment row with the snapshot deploy() takes (settings and secrets), not built."""
    deployment = create_deployment(worker, source)
    deployment.secrets_sealed = snapshot_secrets(worker)
    deployment.plain_settings = snapshot_settings(worker)
    deployment.save()
    return deployment


def api_for(tenant, scopes=("manage", "read")):
    return Client(HTTP_AUTHORIZATION=f"Bearer {issue_key(tenant, 'ops', list(scopes))[1]}")


def test_settings_are_shown_set_and_removed_beside_secrets(worker, tenant, settings):
    settings.QUOTA_MAX_SETTINGS = 2
    api = api_for(tenant)
    url = f"/api/workers/{worker.code}/settings"
    put = api.put(f"{url}/FEATURE_X", {"value": "on"}, content_type="application/json")
    assert put.status_code == 200 and put.json()["value"] == "on"
    api.put(f"{url}/GREETING", {"value": "Howdy"}, content_type="application/json")
    listed = api.get(url).json()["settings"]
    assert [(s["name"], s["value"]) for s in listed] == [("FEATURE_X", "on"), ("GREETING", "Howdy")]
    over = api.put(f"{url}/THIRD", {"value": "x"}, content_type="application/json")
    assert (
        over.status_code == 409 and "quota of 2 plain settings" in over.json()["error"]["message"]
    )
    bad = api.put(f"{url}/lower", {"value": "x"}, content_type="application/json")
    assert bad.status_code == 400
    # A name is a setting or a secret, never both.
    WorkerSecret.objects.create(worker=worker, name="API_TOKEN", value_encrypted=encrypt("t"))
    clash = api.put(f"{url}/API_TOKEN", {"value": "x"}, content_type="application/json")
    assert clash.status_code == 409 and "is a secret of greeter" in clash.json()["error"]["message"]
    secret = api.put(f"/api/workers/{worker.code}/secrets/GREETING", {"value": "x"},
                     content_type="application/json")  # fmt: skip
    assert secret.status_code == 409 and "is a plain setting" in secret.json()["error"]["message"]
    # Readers see values; only managers change them.
    reader = api_for(tenant, ["read"])
    assert reader.get(url).status_code == 200
    assert (
        reader.put(f"{url}/GREETING", {"value": "Hi"}, content_type="application/json").status_code
        == 403
    )
    assert api.delete(f"{url}/FEATURE_X").status_code == 204
    assert api.delete(f"{url}/FEATURE_X").status_code == 404
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("setting.set") == 2 and "setting.delete" in actions


def test_the_portal_shows_settings_to_members_and_lets_managers_change_them(
    owner, viewer, worker, other_tenant, outsider
):
    manager = client_for(Client, owner)
    page = reverse("worker-secrets", args=[worker.code])
    made = manager.post(page, {"setting": "1", "name": "FEATURE_X", "value": "beta"})
    assert made.status_code == 302
    refused = manager.post(page, {"setting": "1", "name": "bad name", "value": "x"})
    assert refused.status_code == 400 and "capital letters" in refused.content.decode()
    shown = client_for(Client, viewer).get(reverse("worker-settings", args=[worker.code]))
    assert "FEATURE_X" in shown.content.decode() and "beta" in shown.content.decode()
    stranger = client_for(Client, outsider)
    assert stranger.get(reverse("worker-settings", args=[worker.code])).status_code == 404
    assert (
        stranger.post(reverse("delete-setting", args=[worker.code, "FEATURE_X"])).status_code == 404
    )
    assert (
        client_for(Client, viewer)
        .post(reverse("delete-setting", args=[worker.code, "FEATURE_X"]))
        .status_code
        == 403
    )
    assert (
        manager.post(reverse("delete-setting", args=[worker.code, "FEATURE_X"])).status_code == 302
    )
    assert not worker.plain_settings.exists()


def test_each_deployment_keeps_its_settings_and_the_diff_shows_them(worker, owner_client):
    worker.plain_settings.create(name="FEATURE_X", value="off")
    first = deploy(worker, GREETER)
    worker.plain_settings.filter(name="FEATURE_X").update(value="on")
    worker.plain_settings.create(name="GREETING", value="Howdy")
    second = deploy(worker, GREETER)
    assert first.plain_settings == {"FEATURE_X": "off"}
    assert first.environment() == {"FEATURE_X": "off"}
    assert compare(first, second).settings == [
        {"name": "FEATURE_X", "old": "off", "new": "on"},
        {"name": "GREETING", "old": None, "new": "Howdy"},
    ]
    page = owner_client.get(reverse("deployment-diff", args=[second.code]) + f"?from={first.code}")
    assert "Howdy" in page.content.decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_call_reads_its_settings_secrets_and_request_id_from_ctx(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="ctx", public=True)
    worker.plain_settings.create(name="GREETING", value="Howdy")
    worker.plain_settings.create(name="FEATURE_X", value="on")
    WorkerSecret.objects.create(worker=worker, name="API_TOKEN", value_encrypted=encrypt("t0k"))
    deployment = as_deploy_makes_it(worker, CONTEXT)
    build_deployment(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == "ready", deployment.error_message
    base = f"{settings.RUNTIME_URL}/d/{deployment.host}"
    answer = httpx.post(f"{base}/api/invoke/greet", json={"name": "Ann"}, timeout=30).json()
    assert answer["result"] == {
        "greeting": "Howdy, Ann!", "feature": "on", "token": "set", "sameAsProcessEnv": True,
        "requestId": answer["requestId"],
    }  # fmt: skip
    assert answer["logs"][0]["message"] == f"call {answer['requestId']}"
    page = httpx.get(f"{base}/anything", timeout=30)
    assert page.json() == {"feature": "on", "requestId": page.headers["x-request-id"]}
    # Work after the answer: the answer leaves first; its lines and failure are the call's.
    done = httpx.post(f"{base}/api/invoke/later", json={"ms": 300, "fail": True}, timeout=30).json()
    assert done["result"] == "answered" and done["logs"] == []
    stored = LogEntry.objects.filter(request_id=done["requestId"]).order_by("id")
    wait_for(lambda: stored.count() >= 2, 15, "the lines after the answer")
    lines = list(stored.values_list("message", flat=True))
    assert lines[0] == "after the answer"
    assert "Work after the answer (ctx.waitUntil) failed: Error: the flush failed" in lines[1]
    # ... within the call's time (2 s here): past it, stopped, and said so.
    slow = httpx.post(f"{base}/api/invoke/later", json={"ms": 60_000}, timeout=30).json()
    assert slow["result"] == "answered"
    stopped = LogEntry.objects.filter(request_id=slow["requestId"])
    wait_for(lambda: stopped.filter(message__contains="did not finish within 2000 ms").exists(),
             15, "the after-work to be stopped")  # fmt: skip
    assert httpx.post(f"{base}/api/invoke/greet", json={}, timeout=30).status_code == 200

    # A later change reaches the next deployment, not this one.
    worker.plain_settings.filter(name="FEATURE_X").update(value="off")
    again = httpx.post(f"{base}/api/invoke/greet", json={}, timeout=30).json()
    assert again["result"]["feature"] == "on"
