"""The one access path: a suspended tenant writes and invokes nothing through any door; a
user in two tenants acts on each object with their role in that object's tenant; invitations
belong to their address, expire and can be withdrawn; one credential per direction."""

import hashlib
import json
import re
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.generator import invoke_secret
from deployments.models import Deployment
from releases.production import auto_promote
from sso.models import SingleSignOn
from tenancy.models import AuditEvent, Invitation, Membership, Tenant
from workers.api_keys import issue_key
from workers.models import ApiKey, Worker, WorkerSecret

from .conftest import client_for, make_user
from .helpers import GREETER, build_now, create_deployment

S = Deployment.Status


def ready(deployment, **fields):
    deployment.transition(S.QUEUED, S.BUILDING)
    deployment.transition(S.BUILDING, S.READY, functions=["hello"], **fields)
    return deployment


def suspend(tenant):
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)


# --- a suspended tenant ---------------------------------------------------------------------


def test_a_suspended_tenants_owner_cannot_create_or_deploy_from_the_portal(owner, tenant, worker):
    deployment = ready(create_deployment(worker, GREETER))
    auto_promote(deployment)
    suspend(tenant)
    client = client_for(Client, owner)
    writes = [
        (reverse("new-worker"), {"name": "fresh", "source": GREETER}),
        (reverse("redeploy", args=[worker.code]), {"source": GREETER + "//2"}),
        (reverse("invoke", args=[deployment.code]), {"function": "hello", "payload": "{}"}),
        (reverse("cancel-deployment", args=[deployment.code]), {}),
        (reverse("worker-visibility", args=[worker.code]), {"public": "1"}),
        (reverse("worker-secrets", args=[worker.code]), {"name": "TOKEN", "value": "v"}),
        (reverse("api-keys"), {"name": "ci", "scopes": ["deploy"]}),
        (reverse("members"), {"email": "new@example.com", "role": "viewer"}),
        (
            reverse("single-sign-on"),
            {
                "issuer": "https://id.example.com",
                "client_id": "c",
                "client_secret": "s",
                "role": "viewer",
            },
        ),  # fmt: skip
        (reverse("delete-worker", args=[worker.code]), {"confirm_name": worker.name}),
    ]
    for url, data in writes:
        response = client.post(url, data)
        assert response.status_code == 403, url
        assert "suspended" in response.content.decode(), url
    # Nothing was written by any of them.
    assert Worker.objects.filter(tenant=tenant).count() == 1
    assert Deployment.objects.count() == 1
    assert not WorkerSecret.objects.exists() and not ApiKey.objects.exists()
    assert not Invitation.objects.exists() and not SingleSignOn.objects.exists()
    worker.refresh_from_db()
    assert not worker.public
    # Reading still works, and every page says why nothing can be changed.
    for url in (reverse("dashboard"), reverse("worker", args=[worker.code])):
        page = client.get(url)
        assert page.status_code == 200 and "is suspended" in page.content.decode()


def test_a_suspended_tenants_keys_and_sessions_write_nothing_through_the_api(owner, tenant, worker):
    secret = issue_key(tenant, "ci", ["deploy", "read", "invoke"])[1]
    deployment = ready(create_deployment(worker, GREETER))
    suspend(tenant)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    body = json.dumps({"name": "greeter", "code": GREETER})
    for client, headers in ((Client(), bearer), (client_for(Client, owner), {})):
        refused = [
            client.post("/api/workers", body, content_type="application/json", **headers),
            client.delete(f"/api/workers/{worker.code}", **headers),
            client.post(f"/api/deployments/{deployment.code}/cancel", **headers),
            client.post(
                f"/api/workers/{worker.code}/production",
                json.dumps({"id": str(deployment.code)}),
                content_type="application/json",
                **headers,
            ),
        ]
        for response in refused:
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "tenant_suspended"
        # Reads still answer.
        assert client.get(f"/api/workers/{worker.code}", **headers).status_code == 200
    assert Deployment.objects.count() == 1 and Worker.objects.count() == 1


# --- a user in two tenants ------------------------------------------------------------------


@pytest.fixture
def two_tenants(tenant, other_tenant):
    """Dana is a developer in Acme and a viewer in Globex; each tenant has a worker with a
    ready deployment, a key and a membership to act on."""
    dana = make_user("dana")
    Membership.objects.create(user=dana, tenant=tenant, role=Membership.Role.DEVELOPER)
    Membership.objects.create(user=dana, tenant=other_tenant, role=Membership.Role.VIEWER)
    objects = {}
    for t in (tenant, other_tenant):
        worker = Worker.objects.create(tenant=t, name="shared-name")
        deployment = ready(create_deployment(worker, GREETER))
        auto_promote(deployment)
        objects[t.slug] = (worker, deployment)
    return dana, objects


def portal_actions(worker, deployment):
    """Every page, partial and write of a worker, with what a developer gets (a viewer gets
    the same for reads and 403 for writes)."""
    code, dcode = worker.code, deployment.code
    reads = [
        reverse("worker", args=[code]),
        reverse("worker-deployments", args=[code]),
        reverse("worker-settings", args=[code]),
        reverse("worker-logs", args=[code]),
        reverse("worker-logs-tail", args=[code]),
        reverse("worker-logs-older", args=[code]),
        reverse("deployment", args=[dcode]),
        reverse("deployment-panel", args=[dcode]),
        reverse("deployment-badge", args=[dcode]),
        reverse("deployment-logs", args=[dcode]),
        reverse("deployment-logs-tail", args=[dcode]),
        reverse("deployment-logs-older", args=[dcode]),
        f"/api/workers/{code}",
        f"/api/workers/{code}/deployments",
        f"/api/deployments/{dcode}",
        f"/api/workers/{code}/logs/poll",
    ]
    writes = [
        ("post", reverse("redeploy", args=[code]), {"source": GREETER + "//again"}),
        ("get", reverse("delete-worker", args=[code]), {}),
        ("post", reverse("cancel-deployment", args=[dcode]), {}),
    ]
    return reads, writes


@pytest.mark.parametrize("current", ["acme", "globex"])
def test_a_user_in_two_tenants_acts_with_the_role_of_each_objects_tenant(two_tenants, current):
    dana, objects = two_tenants
    client = client_for(Client, dana)
    # Whichever tenant the portal is switched to, the object's own tenant decides.
    assert client.post(reverse("switch-tenant"), {"tenant": current}).status_code == 302
    for slug, expected_write in (("acme", 302), ("globex", 403)):
        worker, deployment = objects[slug]
        reads, writes = portal_actions(worker, deployment)
        for url in reads:
            assert client.get(url).status_code == 200, (slug, url)
        for method, url, data in writes:
            status = getattr(client, method)(url, data).status_code
            want = 200 if method == "get" and expected_write == 302 else expected_write
            assert status == want, (slug, url, status)
        invoked = client.post(
            reverse("invoke", args=[deployment.code]), {"function": "nope"}, HTTP_HX_REQUEST="true"
        )
        assert invoked.status_code == (200 if slug == "acme" else 403), slug
        api_delete = client.delete(f"/api/workers/{worker.code}")
        assert api_delete.status_code == (204 if slug == "acme" else 403), slug
    assert Worker.objects.filter(tenant__slug="globex").count() == 1
    assert not Worker.objects.filter(tenant__slug="acme").exists()


def test_the_tenant_switcher_changes_the_dashboard_and_tenant_pages(two_tenants, tenant):
    dana, objects = two_tenants
    client = client_for(Client, dana)
    client.post(reverse("switch-tenant"), {"tenant": "acme"})
    page = client.get(reverse("dashboard")).content.decode()
    assert "Acme" in page and "developer" in page and "New worker" in page
    client.post(reverse("switch-tenant"), {"tenant": "globex"})
    page = client.get(reverse("dashboard")).content.decode()
    assert "viewer" in page and "New worker" not in page
    # A tenant the user is not in cannot be switched to.
    Tenant.objects.create(slug="initech", name="Initech")
    client.post(reverse("switch-tenant"), {"tenant": "initech"})
    assert "Initech</option>" not in client.get(reverse("dashboard")).content.decode()


def test_invocation_secrets_are_made_and_revoked_by_admins_and_the_platforms_never_shown(
    two_tenants, tenant, other_tenant, owner
):
    """A private Vercel deployment opens to its worker's own invocation secrets, made by the
    tenant's admins (shown once) and revoked by them; the platform's own secret for its calls
    is on no page. Dana (developer in Acme, viewer in Globex) makes none, and Globex's worker
    is not there for her to act on at all."""
    dana, _ = two_tenants
    client = client_for(Client, dana)
    deployments = {}
    for t in (tenant, other_tenant):
        worker = Worker.objects.create(tenant=t, name="edge")
        deployments[t.slug] = ready(
            Deployment.objects.create(worker=worker, source=GREETER, backend="vercel"),
            backend_url="https://edge-abc.vercel.app",
        )
    acme = deployments["acme"].worker
    for current in ("acme", "globex"):
        client.post(reverse("switch-tenant"), {"tenant": current})
        for deployment in deployments.values():
            for url in (
                reverse("deployment", args=[deployment.code]),
                reverse("deployment-panel", args=[deployment.code]),
            ):
                page = client.get(url).content.decode()
                assert invoke_secret(deployment) not in page, (current, url)
    issue = reverse("worker-invocation-secret", args=[acme.code, "issue"])
    assert client.post(issue).status_code == 403  # a developer
    admin = client_for(Client, owner)
    shown = admin.post(issue, follow=True).content.decode()
    value = re.search(r"keep it now\): (wis_[\w-]+)", shown).group(1)
    made = acme.invocation_secrets.get()
    assert made.digest == hashlib.sha256(value.encode()).hexdigest()
    assert value not in admin.get(reverse("worker-settings", args=[acme.code])).content.decode()
    revoke = reverse("worker-invocation-secret", args=[acme.code, "revoke"])
    theirs = deployments["globex"].worker
    assert (
        admin.post(reverse("worker-invocation-secret", args=[theirs.code, "issue"])).status_code
        == 404
    )
    assert admin.post(revoke, {"secret": made.code}).status_code == 302
    made.refresh_from_db()
    assert made.revoked_at is not None
    assert AuditEvent.objects.filter(action="worker.invocation_secret_revoked").exists()


# --- invitations ----------------------------------------------------------------------------


def invite(owner_client, email, role="developer"):
    owner_client.post(reverse("members"), {"email": email, "role": role})
    return Invitation.objects.get(email=email)


def test_an_invitation_is_accepted_only_by_the_account_of_its_address(owner_client, tenant):
    invitation = invite(owner_client, "carol@example.com")
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    url = reverse("accept-invitation", args=[invitation.token])
    mallory = client_for(Client, make_user("mallory"))
    refused = mallory.post(url)
    assert refused.status_code == 403 and "sent to another address" in refused.content.decode()
    assert not Membership.objects.filter(tenant=tenant, user__username="mallory").exists()
    carol = make_user("carol")
    assert client_for(Client, carol).post(url).status_code == 302
    assert Membership.objects.get(tenant=tenant, user=carol).role == "developer"
    # Used once.
    assert client_for(Client, carol).get(url).status_code == 404


def test_expired_and_withdrawn_invitations_no_longer_work(owner_client, tenant, developer):
    old = invite(owner_client, "old@example.com")
    Invitation.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(reverse("accept-invitation", args=[old.token])).status_code == 404
    listed = owner_client.get(reverse("members")).content.decode().split("<h1>")[1]
    assert "old@example.com" not in listed  # (above the list, the invitation's own notice)

    pending = invite(owner_client, "later@example.com")
    withdraw = reverse("withdraw-invitation", args=[pending.pk])
    assert client_for(Client, developer).post(withdraw).status_code == 403
    assert owner_client.post(withdraw).status_code == 302
    assert Client().get(reverse("accept-invitation", args=[pending.token])).status_code == 404
    assert AuditEvent.objects.filter(action="member.withdraw", target="later@example.com").exists()


def test_outsiders_cannot_withdraw_another_tenants_invitation(owner_client, outsider):
    pending = invite(owner_client, "x@example.com")
    url = reverse("withdraw-invitation", args=[pending.pk])
    assert client_for(Client, outsider).post(url).status_code == 404
    pending.refresh_from_db()
    assert pending.withdrawn_at is None


# --- one credential per direction -----------------------------------------------------------


def test_each_direction_has_its_own_secret(settings):
    assert settings.PORTAL_INVOKE_TOKEN != settings.RUNTIME_TOKEN
    # The portal's token opens nothing of the internal API the runtime uses.
    response = Client().get(
        "/internal/runtime/hosts/x--acme",
        HTTP_AUTHORIZATION=f"Bearer {settings.PORTAL_INVOKE_TOKEN}",
    )
    assert response.status_code == 404


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_only_the_portal_token_lets_a_call_into_a_private_worker(runtime, tenant):
    from workers_portal.management.commands.runtime import host_env

    worker = Worker.objects.create(tenant=tenant, name="locked")
    deployment = build_now(worker, GREETER)
    url = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/hello"
    # The runtime holds the digest of the portal's token, not the token.
    env = host_env()
    assert settings.PORTAL_INVOKE_TOKEN not in env.values()
    digest = hashlib.sha256(settings.PORTAL_INVOKE_TOKEN.encode()).hexdigest()
    assert env["PORTAL_INVOKE_TOKEN_SHA256"] == digest
    for wrong in (settings.RUNTIME_TOKEN, digest, ""):
        refused = httpx.post(url, json={}, headers={"x-portal-token": wrong}, timeout=30)
        assert refused.status_code == 401, wrong
    answer = deployment.runs_on.invoke(deployment, "hello", "{}")
    assert answer.status == 200 and answer.body["result"] == {"greeting": "Hello, world!"}


def test_making_a_worker_public_is_an_admins_act(client, developer, owner, worker):
    client.force_login(developer)
    assert (
        client.post(reverse("worker-visibility", args=[worker.code]), {"public": "1"}).status_code
        == 403
    )
    page = client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "Make public" not in page
    client.force_login(owner)
    assert (
        client.post(reverse("worker-visibility", args=[worker.code]), {"public": "1"}).status_code
        == 302
    )
    worker.refresh_from_db()
    assert worker.public


def test_tenant_pages_and_api_writes_follow_the_role_in_the_tenant_they_act_on(
    tenant, other_tenant
):
    """Erin is an admin of Acme and a viewer of Globex."""
    erin = make_user("erin")
    Membership.objects.create(user=erin, tenant=tenant, role=Membership.Role.ADMIN)
    Membership.objects.create(user=erin, tenant=other_tenant, role=Membership.Role.VIEWER)
    client = client_for(Client, erin)
    pages = [reverse("api-keys"), reverse("members"), reverse("audit-log"),
             reverse("single-sign-on")]  # fmt: skip
    for current, expected in (("acme", 200), ("globex", 403)):
        client.post(reverse("switch-tenant"), {"tenant": current})
        for url in pages:
            assert client.get(url).status_code == expected, (current, url)
    # The API lists what both tenants hold, and deploys only where the role allows.
    for t in (tenant, other_tenant):
        Worker.objects.create(tenant=t, name=f"w-{t.slug}")
    listed = client.get("/api/workers").json()["workers"]
    assert sorted(w["tenant"] for w in listed) == ["acme", "globex"]
    for slug, expected in (("acme", 202), ("globex", 403)):
        body = json.dumps({"tenant": slug, "name": "fresh", "code": GREETER})
        response = client.post("/api/workers", body, content_type="application/json")
        assert response.status_code == expected, slug
    assert Worker.objects.filter(name="fresh").count() == 1
    # Without naming a tenant, a member of two is asked to.
    unnamed = json.dumps({"name": "other", "code": GREETER})
    client.post(reverse("switch-tenant"), {"tenant": "globex"})
    response = client.post("/api/workers", unnamed, content_type="application/json")
    assert response.status_code == 403  # the current tenant is Globex, where Erin only reads
