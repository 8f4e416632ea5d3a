"""`functions login`: the CLI asks, a member approves in the portal (tenant and scopes, never
beyond their role), the CLI collects a personal key once; the key acts with the member's role
as it is now and stops when they leave. And the portal serves the CLI's package."""

import io
import tarfile

import pytest
from django.test import Client
from django.urls import reverse

from tenancy.models import Membership, Tenant
from workers import key_requests
from workers.models import ApiKey, KeyRequest

from .conftest import client_for
from .helpers import GREETER

pytestmark = pytest.mark.django_db


def ask(client: Client) -> dict:
    answer = client.post(
        "/api/cli/logins", {"client": "functions 0.1 on laptop"}, content_type="application/json"
    )
    assert answer.status_code == 201
    return answer.json()


def poll(client: Client, asked: dict) -> dict:
    body = {"pollToken": asked["pollToken"]}
    return client.post("/api/cli/logins/poll", body, content_type="application/json").json()


def test_a_developer_approves_the_cli_which_collects_a_personal_key_once(tenant, developer):
    anonymous = Client()
    asked = ask(anonymous)
    assert poll(anonymous, asked)["status"] == "pending"
    # Not signed in: the approval page sends to the login first.
    page = reverse("cli-approve") + f"?code={asked['code']}"
    assert anonymous.get(page).status_code == 302
    browser = client_for(Client, developer)
    shown = browser.get(page).content.decode()
    assert asked["code"] in shown and "functions 0.1 on laptop" in shown
    # A developer's role gives deploy, invoke and read; manage is not offered to keys.
    assert 'value="deploy"' in shown and 'value="manage"' not in shown
    approved = browser.post(
        reverse("cli-approve"),
        {"code": asked["code"], "tenant": "acme", "scopes": ["deploy", "read"]},
    )
    assert "Approved" in approved.content.decode()
    collected = poll(anonymous, asked)
    assert collected["status"] == "approved" and collected["tenant"] == "acme"
    assert collected["scopes"] == ["deploy", "read"]
    assert poll(anonymous, asked)["status"] == "collected"  # once, never again
    assert KeyRequest.objects.get().secret_sealed == ""  # nothing of it kept
    key = ApiKey.objects.get()
    assert key.member == developer and key.created_by == developer
    # The key works, as the developer: it deploys.
    api = Client(HTTP_AUTHORIZATION=f"Bearer {collected['token']}")
    sent = api.post(
        "/api/workers", {"name": "from-cli", "code": GREETER}, content_type="application/json"
    )
    assert sent.status_code == 202
    # Demoted to viewer: the same key reads, and no longer deploys.
    Membership.objects.filter(user=developer).update(role="viewer")
    again = api.post(
        "/api/workers", {"name": "from-cli", "code": GREETER}, content_type="application/json"
    )
    assert again.status_code == 403
    assert api.get("/api/workers").status_code == 200
    # Gone from the tenant: the key is not accepted at all.
    Membership.objects.filter(user=developer).delete()
    assert api.get("/api/workers").status_code == 401


def test_a_viewer_cannot_approve_more_than_reading_and_a_denial_reaches_the_cli(
    tenant, viewer, owner
):
    anonymous = Client()
    asked = ask(anonymous)
    browser = client_for(Client, viewer)
    refused = browser.post(
        reverse("cli-approve"),
        {"code": asked["code"], "tenant": "acme", "scopes": ["deploy", "read"]},
    )
    text = refused.content.decode()
    assert "Select a valid choice" in text or "does not allow deploy" in text
    assert not ApiKey.objects.exists() and poll(anonymous, asked)["status"] == "pending"
    browser.post(reverse("cli-approve"), {"code": asked["code"], "decision": "deny"})
    assert poll(anonymous, asked)["status"] == "denied"
    # A decided (or unknown) code cannot be approved later.
    late = client_for(Client, owner).get(reverse("cli-approve") + f"?code={asked['code']}")
    assert late.status_code == 404 and "No sign-in waits with that code" in late.content.decode()


def test_a_suspended_tenant_gets_no_new_key_and_a_stranger_cannot_pick_another_tenant(
    tenant, owner, other_tenant
):
    anonymous = Client()
    asked = ask(anonymous)
    browser = client_for(Client, owner)
    elsewhere = browser.post(
        reverse("cli-approve"), {"code": asked["code"], "tenant": "globex", "scopes": ["read"]}
    )
    assert "globex is not one of the available choices" in elsewhere.content.decode()
    assert 'value="globex"' not in elsewhere.content.decode()  # not even offered
    assert not ApiKey.objects.exists()
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended")
    suspended = browser.post(
        reverse("cli-approve"), {"code": asked["code"], "tenant": "acme", "scopes": ["read"]}
    )
    assert "suspended" in suspended.content.decode() and not ApiKey.objects.exists()
    assert poll(anonymous, asked)["status"] == "pending"


def test_sign_ins_waiting_are_bounded_per_address_and_expire(tenant):
    from datetime import timedelta

    from django.utils import timezone

    anonymous = Client()
    for _ in range(key_requests.PENDING_PER_ADDRESS):
        ask(anonymous)
    refused = anonymous.post(
        "/api/cli/logins", {"client": "one more"}, content_type="application/json"
    )
    assert refused.status_code == 429 and "wait for approval" in refused.json()["error"]["message"]
    # Expired ones stop counting, and are forgotten after a while.
    KeyRequest.objects.update(expires=timezone.now() - timedelta(minutes=30))
    asked = ask(anonymous)
    assert KeyRequest.objects.count() == 1
    KeyRequest.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert poll(anonymous, asked)["status"] == "expired"


def test_the_portal_serves_the_cli_and_shows_how_to_install_it(owner_client):
    from portal.cli import cli_version

    page = owner_client.get(reverse("cli-install")).content.decode()
    name = f"functions_cli-{cli_version()}.tar.gz"
    assert f"pip install http://testserver/cli/{name}" in page
    download = Client().get(f"/cli/{name}")  # no sign-in needed to install
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(download.content)) as packed:
        names = packed.getnames()
        project = packed.extractfile(f"functions_cli-{cli_version()}/pyproject.toml").read()
    assert f"functions_cli-{cli_version()}/functions_cli/main.py" in names
    assert not any("__pycache__" in n or "/." in n for n in names)
    assert f"functions_cli-{cli_version()}/functions_cli/runtime/host.ts" in names  # for dev
    assert f"functions_cli-{cli_version()}/functions_cli/starter/index_test.ts" in names
    assert len(download.content) < 1_000_000
    assert b'functions = "functions_cli.main:run"' in project
    assert Client().get("/cli/other-1.0.tar.gz").status_code == 404
    from functions_cli import __version__

    assert __version__ == cli_version()  # the package says the version it is served as
