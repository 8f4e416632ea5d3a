"""Records nobody rewrites: the platform's own records are read-only in the admin (no add,
change or delete, whoever asks); audit events are append-only in the database itself and
outlive their tenant; deleting a tenant is a deliberate act with its own confirmation and
audit event; the audit export is the way out."""

import csv
import io
from datetime import date

import pytest
from asgiref.sync import async_to_sync
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.models import Artifact, Deployment
from releases.models import ProductionChange, Release
from runs.models import Run
from telemetry.models import Invocation, LogEntry, UsageDay
from tenancy.models import AuditEvent, Tenant
from workers.models import Worker

from .conftest import client_for, make_operator
from .helpers import GREETER, create_deployment

RECORDS = [
    "deployments/deployment",
    "deployments/artifact",
    "telemetry/invocation",
    "telemetry/logentry",
    "telemetry/usageday",
    "runs/run",
    "releases/release",
    "releases/productionchange",
    "tenancy/auditevent",
]


@pytest.fixture
def operator_client(db):
    user = make_operator("op")
    return client_for(Client, user)


@pytest.fixture
def records(tenant, worker):
    """One record of each kind, as the platform writes them."""
    deployment = create_deployment(worker, GREETER)
    deployment.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    deployment.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    now = timezone.now()
    Artifact.objects.create(sha256="a" * 64, content="export {}", size=9)
    Invocation.objects.create(
        tenant=tenant, deployment=deployment, request_id="req_1", function="hello",
        status="ok", started_at=now,
    )  # fmt: skip
    LogEntry.objects.create(
        tenant=tenant, deployment=deployment, request_id="req_1", seq=0, timestamp=now,
        message="hello",
    )  # fmt: skip
    UsageDay.objects.create(tenant=tenant, day=date.today(), invocations=1)
    Run.objects.create(tenant=tenant, worker=worker, deployment=deployment, function="hello")
    AuditEvent.objects.create(tenant=tenant, actor_label="owner", action="deploy", target="w")
    Release.objects.create(tenant=tenant, name="r1")
    ProductionChange.objects.create(
        tenant=tenant, generation=1, worker=worker, production=deployment, how="promote"
    )
    return deployment


def test_operators_cannot_add_change_or_delete_the_platforms_records(operator_client, records):
    for model in RECORDS:
        listing = operator_client.get(f"/admin/{model}/")
        assert listing.status_code == 200, model
        page = listing.content.decode()
        assert f"/admin/{model}/add/" not in page, model
        assert 'value="delete_selected"' not in page, model
        assert operator_client.get(f"/admin/{model}/add/").status_code == 403, model
        obj = listing.context["cl"].result_list[0]
        change = f"/admin/{model}/{obj.pk}/change/"
        form = operator_client.get(change)
        assert form.status_code == 200, model
        assert 'type="submit"' not in form.content.decode().split('id="content"')[1], model
        assert operator_client.post(change, {}).status_code == 403, model
        assert operator_client.get(f"/admin/{model}/{obj.pk}/delete/").status_code == 403, model
        assert operator_client.post(f"/admin/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403, model  # fmt: skip
        bulk = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
        operator_client.post(f"/admin/{model}/", bulk)
        assert type(obj).objects.filter(pk=obj.pk).exists(), model


def test_an_operator_cannot_edit_a_ready_deployments_files(operator_client, records):
    url = f"/admin/deployments/deployment/{records.pk}/change/"
    tampered = {"files": '{"index.ts": "export const evil = 1;"}', "entry": "index.ts",
                "lockfile": "", "source": "evil"}  # fmt: skip
    assert operator_client.post(url, tampered).status_code == 403
    records.refresh_from_db()
    assert records.source == GREETER and records.files == {"index.ts": GREETER}


def test_an_operator_cannot_point_production_at_another_deployment(
    operator_client, worker, other_tenant
):
    theirs = create_deployment(Worker.objects.create(tenant=other_tenant, name="o"), GREETER)
    page = operator_client.get(f"/admin/workers/worker/{worker.pk}/change/").content.decode()
    assert 'name="production"' not in page and 'name="tenant"' not in page
    form = {"name": worker.name, "tenant": other_tenant.pk, "production": theirs.pk}
    operator_client.post(f"/admin/workers/worker/{worker.pk}/change/", form)
    worker.refresh_from_db()
    assert worker.production_id is None and worker.tenant_id != other_tenant.pk


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_the_database_refuses_to_rewrite_an_audit_event(tenant, statement):
    event = AuditEvent.objects.create(tenant=tenant, actor_label="owner", action="key.create")
    with pytest.raises(DatabaseError, match="audit events are append-only"), transaction.atomic():
        events = AuditEvent.objects.filter(pk=event.pk)
        if statement == "update":
            events.update(action="nothing.happened")
        else:
            events.delete()
    event.refresh_from_db()
    assert event.action == "key.create"


def test_deleting_a_user_keeps_their_events_under_their_name(tenant, owner):
    event = AuditEvent.objects.create(
        tenant=tenant, actor=owner, actor_label=owner.username, action="deploy"
    )
    owner.delete()
    event.refresh_from_db()
    assert event.actor_id is None and event.actor_label == owner.username
    assert event.action == "deploy"


def test_deleting_a_tenant_asks_for_its_slug_and_is_audited(
    operator_client, tenant, worker, other_tenant, records
):
    AuditEvent.objects.create(tenant=tenant, actor_label="owner", action="deploy", target="w")
    url = f"/admin/tenancy/tenant/{tenant.pk}/delete/"
    page = operator_client.get(url).content.decode()
    assert "1 worker and" in page and "1 deployment," in page
    assert "Type the tenant's slug, <code>acme</code>, to confirm" in page
    listing = operator_client.get("/admin/tenancy/tenant/").content.decode()
    assert 'value="delete_selected"' not in listing  # no bulk delete of tenants

    wrong = operator_client.post(url, {"confirm": "globex"})
    assert wrong.status_code == 400
    assert (
        "That is not the slug of this tenant (acme); nothing was deleted." in wrong.content.decode()
    )
    assert Tenant.objects.filter(pk=tenant.pk).exists()

    done = operator_client.post(url, {"confirm": "acme"})
    assert done.status_code == 302
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    assert not Deployment.objects.exists() and not Invocation.objects.exists()
    assert not LogEntry.objects.exists() and not Run.objects.exists()
    # Its events stay, with the delete among them, and another tenant's objects are untouched.
    kept = AuditEvent.objects.filter(tenant_slug="acme").order_by("id")
    assert [e.action for e in kept] == ["deploy", "deploy", "tenant.delete"]
    assert kept.last().actor_label == "op" and kept.last().details["workers"] == 1
    assert Tenant.objects.filter(pk=other_tenant.pk).exists()
    events = operator_client.get("/admin/tenancy/auditevent/").content.decode()
    assert "tenant.delete" in events


def read_csv(response) -> list[list[str]]:
    async def body():
        return b"".join([chunk async for chunk in response.streaming_content])

    return list(csv.reader(io.StringIO(async_to_sync(body)().decode())))


def test_the_audit_log_exports_as_csv_to_its_tenant_only(
    owner_client, tenant, other_tenant, operator_client
):
    AuditEvent.objects.create(
        tenant=tenant, actor_label="owner", action="key.create", target="ci", details={"a": 1}
    )
    AuditEvent.objects.create(tenant=other_tenant, actor_label="them", action="theirs")
    answer = owner_client.get(reverse("audit-log"), {"format": "csv"})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    rows = read_csv(answer)
    assert rows[0] == ["created", "tenant", "actor", "action", "target", "details", "ip"]
    # (and the owner's sign-in, which the audit log keeps too)
    assert [r[1:6] for r in rows[1:] if r[3] != "account.sign_in"] == [
        ["acme", "owner", "key.create", "ci", '{"a": 1}']
    ]
    # Operators export any selection from the admin.
    selected = list(AuditEvent.objects.values_list("pk", flat=True))
    exported = operator_client.post(
        "/admin/tenancy/auditevent/",
        {"action": "export_csv", "_selected_action": selected},
    )
    assert {r[3] for r in read_csv(exported)[1:]} == {"key.create", "theirs", "account.sign_in"}


def test_suspending_and_resuming_in_the_admin_ask_first(operator_client, tenant):
    url = "/admin/tenancy/tenant/"
    choose = {"action": "suspend", "_selected_action": [tenant.pk]}
    asked = operator_client.post(url, choose)
    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Suspend 1 tenant?" in page and tenant.slug in page and "nothing is deleted" in page
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE  # asking changed nothing
    operator_client.post(url, {**choose, "confirmed": "yes"})
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.SUSPENDED
    assert AuditEvent.objects.filter(action="tenant.suspend", tenant_slug=tenant.slug).exists()
    resume = {"action": "resume", "_selected_action": [tenant.pk]}
    assert "Resume 1 tenant?" in operator_client.post(url, resume).content.decode()
    operator_client.post(url, {**resume, "confirmed": "yes"})
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
