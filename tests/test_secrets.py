"""Workers' secrets: encrypted at rest, write-only, snapshotted per deployment, rotated."""

import json

import httpx
import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from deployments.deploy import deploy, snapshot_secrets
from sso.models import SingleSignOn
from workers.api_keys import issue_key
from workers.models import Worker, WorkerSecret
from workers.secrets import decrypt, encrypt, unseal

from .conftest import client_for, wait_for
from .helpers import build_now, program

VALUE = "s3cr3t-value-that-must-not-leak"
READS_ENV = program("secrets/reads_env")


@pytest.fixture
def worker(tenant):
    return Worker.objects.create(tenant=tenant, name="envy")


def add_secret(client, worker, name, value):
    return client.post(
        reverse("worker-secrets", args=[worker.code]), {"name": name, "value": value}
    )


def test_secret_is_stored_encrypted_and_never_shown(owner_client, worker):
    assert add_secret(owner_client, worker, "API_TOKEN", VALUE).status_code == 302
    secret = WorkerSecret.objects.get(worker=worker)
    assert VALUE not in secret.value_encrypted and decrypt(secret.value_encrypted) == VALUE
    page = owner_client.get(reverse("worker-secrets", args=[worker.code])).content.decode()
    assert "API_TOKEN" in page and VALUE not in page and "••••" in page
    assert add_secret(owner_client, worker, "bad-name", "x").status_code == 400  # form error
    assert WorkerSecret.objects.count() == 1


def test_only_admins_manage_secrets_and_outsiders_get_404(
    worker, developer, outsider, owner_client
):
    add_secret(owner_client, worker, "API_TOKEN", VALUE)
    urls = [
        reverse("worker-secrets", args=[worker.code]),
        reverse("delete-secret", args=[worker.code, "API_TOKEN"]),
    ]
    dev = client_for(Client, developer)
    assert dev.get(urls[0]).status_code == 403 and dev.post(urls[1]).status_code == 403
    out = client_for(Client, outsider)
    assert out.get(urls[0]).status_code == 404 and out.post(urls[1]).status_code == 404
    assert WorkerSecret.objects.count() == 1


def test_each_deployment_keeps_the_secrets_it_was_deployed_with(owner_client, worker, owner):
    add_secret(owner_client, worker, "API_TOKEN", "first")
    first = deploy(worker, READS_ENV, owner)
    add_secret(owner_client, worker, "API_TOKEN", "second")
    second = deploy(worker, READS_ENV, owner)
    first.refresh_from_db()
    assert unseal(first.secrets_sealed) == {"API_TOKEN": "first"}
    assert unseal(second.secrets_sealed) == {"API_TOKEN": "second"}
    assert "first" not in first.secrets_sealed


def test_rotation_re_encrypts_with_the_new_key(owner_client, worker, settings):
    add_secret(owner_client, worker, "API_TOKEN", VALUE)
    deployment = deploy(worker, READS_ENV)
    sso = SingleSignOn.objects.create(tenant=worker.tenant, issuer="https://id.example.com",
                                      client_id="c", client_secret=encrypt("sso-secret"))  # fmt: skip
    old_key = settings.SECRETS_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.SECRETS_ENCRYPTION_KEYS = [new_key]  # the old key is gone now
    assert decrypt(WorkerSecret.objects.get().value_encrypted) == VALUE
    deployment.refresh_from_db()
    assert unseal(deployment.secrets_sealed) == {"API_TOKEN": VALUE}
    sso.refresh_from_db()
    assert decrypt(sso.client_secret) == "sso-secret"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_code_reads_secrets_as_process_env_and_rollback_brings_the_old_set(runtime, tenant, owner):
    worker = Worker.objects.create(tenant=tenant, name="envy")
    WorkerSecret.objects.create(
        worker=worker, name="API_TOKEN", value_encrypted=_enc("secret-value-one")
    )
    first = build_now(worker, READS_ENV)
    first.secrets_sealed = snapshot_secrets(worker)
    first.save()
    key = issue_key(tenant, "ci", ["invoke", "read", "deploy"])[1]
    auth = {"authorization": f"Bearer {key}"}

    def call(host):
        return httpx.post(
            f"{settings.RUNTIME_URL}/d/{host}/api/invoke/token", json={}, headers=auth, timeout=30
        ).json()

    assert call(first.host)["result"] == "secret-value-one"
    WorkerSecret.objects.filter(worker=worker).update(value_encrypted=_enc("secret-value-two"))
    second = build_now(worker, READS_ENV + "// v2\n")
    second.secrets_sealed = snapshot_secrets(worker)
    second.save()
    assert call(second.host)["result"] == "secret-value-two"
    # Deployments are immutable: the old one keeps its set.
    assert call(first.host)["result"] == "secret-value-one"

    client = Client()
    client.post(
        f"/api/workers/{worker.code}/production", json.dumps({"id": str(first.code)}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}",
    )  # fmt: skip
    wait_for(lambda: call(worker.host)["result"] == "secret-value-one", 5, "the rollback", 0.2)
    # Nothing the API answers shows a value.
    for url in [f"/api/workers/{worker.code}", f"/api/workers/{worker.code}/deployments"]:
        body = client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}").content.decode()
        assert "secret-value" not in body


def _enc(value):
    from workers.secrets import encrypt

    return encrypt(value)
