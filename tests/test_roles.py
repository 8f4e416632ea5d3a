"""The role-by-action matrix: every action for every role, allowed or refused; and the
audit log that records the actions that change something."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from tenancy.models import AuditEvent, Membership
from workers.models import Worker

from .conftest import client_for, member
from .helpers import GREETER, create_deployment

OK, FORBIDDEN, MISSING = 200, 403, 404
ROLES = ["owner", "admin", "developer", "viewer", "outsider"]
# action: expected status for owner, admin, developer, viewer, member of another tenant
MATRIX = {
    "read worker page": (OK, OK, OK, OK, MISSING),
    "read live logs": (OK, OK, OK, OK, MISSING),
    "read via API": (OK, OK, OK, OK, MISSING),
    "create worker": (OK, OK, OK, FORBIDDEN, None),
    "deploy new version": (OK, OK, OK, FORBIDDEN, MISSING),
    "invoke from portal": (OK, OK, OK, FORBIDDEN, MISSING),
    "deploy via API": (OK, OK, OK, FORBIDDEN, MISSING),
    "change visibility": (OK, OK, FORBIDDEN, FORBIDDEN, MISSING),
    "delete worker (confirm page)": (OK, OK, OK, FORBIDDEN, MISSING),
    "manage secrets": (OK, OK, FORBIDDEN, FORBIDDEN, MISSING),
    "manage API keys": (OK, OK, FORBIDDEN, FORBIDDEN, None),
    "manage members": (OK, OK, FORBIDDEN, FORBIDDEN, None),
    "read audit log": (OK, OK, FORBIDDEN, FORBIDDEN, None),
}


@pytest.fixture
def setup(tenant, other_tenant):
    users = {role: member(tenant, role, role) for role in ROLES[:4]}
    users["outsider"] = member(other_tenant, "outsider", Membership.Role.OWNER)
    worker = Worker.objects.create(tenant=tenant, name="greeter")
    deployment = create_deployment(worker, GREETER)
    return users, worker, deployment


def perform(client: Client, action: str, worker, deployment) -> int:
    code = worker.code
    responses = {
        "read worker page": lambda: client.get(reverse("worker", args=[code])),
        "read live logs": lambda: client.get(reverse("worker-logs", args=[code])),
        "read via API": lambda: client.get(f"/api/workers/{code}"),
        "create worker": lambda: client.post(reverse("new-worker"), {"name": "", "source": ""}),
        "deploy new version": lambda: client.post(
            reverse("redeploy", args=[code]), {"source": GREETER}
        ),
        "invoke from portal": lambda: client.post(
            reverse("invoke", args=[deployment.code]), {"function": "hello"}, HTTP_HX_REQUEST="true"
        ),
        "deploy via API": lambda: client.post(
            "/api/workers",
            json.dumps({"tenant": "acme", "name": "greeter", "code": GREETER}),
            content_type="application/json",
        ),  # fmt: skip
        "change visibility": lambda: client.post(
            reverse("worker-visibility", args=[code]), {"public": "0"}
        ),
        "delete worker (confirm page)": lambda: client.get(reverse("delete-worker", args=[code])),
        "manage secrets": lambda: client.get(reverse("worker-secrets", args=[code])),
        "manage API keys": lambda: client.get(reverse("api-keys")),
        "manage members": lambda: client.get(reverse("members")),
        "read audit log": lambda: client.get(reverse("audit-log")),
    }
    status = responses[action]().status_code
    return {302: OK, 202: OK}.get(status, status)  # a redirect after a change is success


@pytest.mark.parametrize("action", MATRIX)
def test_role_matrix(setup, action):
    users, worker, deployment = setup
    for role, expected in zip(ROLES, MATRIX[action], strict=True):
        if expected is None:
            continue  # a tenant-wide page: an outsider sees their own tenant's
        got = perform(client_for(Client, users[role]), action, worker, deployment)
        assert got == expected, f"{role} / {action}: {got}, expected {expected}"


def test_audit_log_records_who_did_what_from_where(setup, tenant):
    users, worker, deployment = setup
    owner = client_for(Client, users["owner"])
    owner.post(reverse("redeploy", args=[worker.code]), {"source": GREETER + "//2"})
    owner.post(reverse("api-keys"), {"name": "ci", "scopes": ["deploy"]})
    owner.post(
        reverse("worker-secrets", args=[worker.code]), {"name": "TOKEN", "value": "v-secret-1"}
    )
    owner.post(reverse("worker-visibility", args=[worker.code]), {"public": "1"})
    events = list(
        AuditEvent.objects.filter(tenant=tenant).exclude(action="account.sign_in").order_by("id")
    )
    assert [e.action for e in events] == ["deploy", "key.create", "secret.set", "worker.visibility"]
    assert {e.actor_label for e in events} == {"owner"} and events[0].ip == "127.0.0.1"
    assert all("v-secret-1" not in json.dumps(e.details) + e.target for e in events)
    page = owner.get(reverse("audit-log")).content.decode()
    assert "key.create" in page and "secret.set" in page and "v-secret-1" not in page
    # Another tenant's admin sees none of it.
    outsider_page = client_for(Client, users["outsider"]).get(reverse("audit-log")).content.decode()
    assert "key.create" not in outsider_page
