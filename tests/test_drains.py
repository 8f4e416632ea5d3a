"""Tenants' log drains: signed NDJSON batches in order from a cursor, retried with backoff,
paused after repeated failures and resumed without losing a line; private addresses refused."""

import hashlib
import hmac
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from telemetry.drains import deliver_due
from telemetry.ingest import store_runtime_batch
from telemetry.models import LogDrain

from .conftest import client_for
from .helpers import GREETER, create_deployment
from .receivers import Receiver


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def lines(deployment, start: int, n: int):
    store_runtime_batch(json.dumps({"invocations": [], "logs": [
        {"requestId": "req_d", "deploymentId": str(deployment.code), "seq": start + k,
         "function": "hello", "timestamp": timezone.now().isoformat(), "level": "log",
         "message": f"line {start + k}"}
        for k in range(n)]}).encode())  # fmt: skip


def test_a_drain_gets_signed_ndjson_in_order_retries_pauses_and_resumes_without_loss(
    owner_client, worker, receiver, settings
):
    deployment = create_deployment(worker, GREETER)
    lines(deployment, 0, 3)  # before the drain: not sent
    refused = owner_client.post(reverse("drains"), {"url": receiver.url})
    page = refused.content.decode()
    assert refused.status_code == 400
    assert "127.0.0.1 is a loopback, private or reserved address" in page
    assert f'value="{receiver.url}"' in page  # what was typed stays in the field
    settings.DRAIN_ALLOW_PRIVATE = True
    settings.DRAIN_MAX_FAILURES = 2
    made = owner_client.post(reverse("drains"), {"url": receiver.url}).content.decode()
    drain = LogDrain.objects.get()
    assert drain.secret in made  # shown once
    assert drain.secret not in owner_client.get(reverse("drains")).content.decode()

    lines(deployment, 3, 4)
    assert deliver_due() == 4
    body = receiver.bodies[0]
    expected = "sha256=" + hmac.new(drain.secret.encode(), body, hashlib.sha256).hexdigest()
    assert receiver.signatures[0] == expected
    assert [r["message"] for r in receiver.lines()] == [f"line {k}" for k in range(3, 7)]
    assert receiver.lines()[0]["worker"] == worker.name
    assert deliver_due() == 0  # nothing new, nothing again

    receiver.fail = 5
    lines(deployment, 7, 2)
    assert deliver_due() == 0
    drain.refresh_from_db()
    assert drain.failures == 1 and drain.status == "active" and "503" in drain.last_error
    assert drain.next_attempt_at > timezone.now()  # backs off
    LogDrain.objects.update(next_attempt_at=timezone.now())
    deliver_due()
    drain.refresh_from_db()
    assert drain.status == "paused"
    page = owner_client.get(reverse("drains")).content.decode()
    assert "Paused" in page and "The drain answered 503." in page and "Resume" in page
    receiver.fail = 0
    owner_client.post(reverse("drain-act", args=[drain.code, "resume"]))
    assert deliver_due() == 2
    assert [r["message"] for r in receiver.lines()][-2:] == ["line 7", "line 8"]  # none lost


def test_drains_are_for_admins_and_hidden_from_outsiders(
    owner, worker, developer, outsider, tenant
):
    drain = LogDrain.objects.create(tenant=tenant, url="https://acme-logs.example.org/", secret="s")
    assert (
        client_for(Client, developer)
        .post(reverse("drains"), {"url": "https://x.example/"})
        .status_code
        == 403
    )
    assert client_for(Client, developer).get(reverse("drains")).status_code == 403
    for act in ("resume", "delete"):
        assert (
            client_for(Client, outsider)
            .post(reverse("drain-act", args=[drain.code, act]))
            .status_code
            == 404
        )
    assert "acme-logs" not in client_for(Client, outsider).get(reverse("drains")).content.decode()
    assert LogDrain.objects.filter(pk=drain.pk).exists()
