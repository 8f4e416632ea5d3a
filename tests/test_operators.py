"""Operators: a home in the portal instead of a dead end, an admin that keeps the platform's
own records read-only, and `manage.py demo` separating the operator from the demo owner."""

from io import StringIO

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from deployments.models import Deployment
from tenancy.models import Tenant

from .conftest import client_for, make_operator, wait_for
from .helpers import GREETER, create_deployment


def operator():
    return make_operator("op")


def test_an_operator_in_no_tenant_lands_on_the_platform_home(tenant, worker, other_tenant):
    failed = create_deployment(worker, GREETER)
    failed.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    failed.transition(
        Deployment.Status.BUILDING, Deployment.Status.ERROR, error_message="3 type errors"
    )
    create_deployment(worker, GREETER)  # waiting for a builder
    Tenant.objects.filter(pk=other_tenant.pk).update(status=Tenant.Status.SUSPENDED)
    client = client_for(Client, operator())
    landing = client.get(reverse("dashboard"))
    assert landing.status_code == 302 and landing["Location"] == reverse("operators")
    page = client.get(reverse("operators")).content.decode()
    assert "Acme" in page and "<code>globex</code>" in page and "1 suspended" in page
    assert "<strong>1</strong> builds queued or building" in page
    assert "3 type errors" in page and reverse("admin:index") in page


def test_members_do_not_see_the_operators_home(owner_client):
    response = owner_client.get(reverse("operators"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert reverse("operators") not in owner_client.get(reverse("dashboard")).content.decode()


def test_the_platforms_own_records_are_read_only_in_the_admin(tenant, worker):
    client = client_for(Client, operator())
    for model in ("telemetry/invocation", "telemetry/logentry", "deployments/artifact",
                  "tenancy/auditevent"):  # fmt: skip
        assert client.get(f"/admin/{model}/add/").status_code == 403, model
        listing = client.get(f"/admin/{model}/").content.decode()
        assert f"/admin/{model}/add/" not in listing, model
    index = client.get("/admin/").content.decode()
    assert "Log lines" in index and "Log entrys" not in index
    # The membership form's tenant picker tells two tenants of the same name apart.
    Tenant.objects.create(slug="acme-eu", name="Acme")
    picker = client.get(
        "/admin/autocomplete/",
        {"app_label": "tenancy", "model_name": "membership", "field_name": "tenant",
         "term": "acme"},
    ).json()  # fmt: skip
    assert sorted(r["text"] for r in picker["results"]) == ["Acme (acme)", "Acme (acme-eu)"]
    form = client.get("/admin/tenancy/tenant/add/").content.decode()
    assert form.index('name="slug"') < form.index('name="name"') < form.index('name="max_workers"')


def test_demo_makes_an_ordinary_owner_and_a_separate_operator(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("demo", stdout=out)
    users = get_user_model().objects
    demo, op = users.get(username="demo"), users.get(username="operator")
    assert not demo.is_superuser and not demo.is_staff
    assert op.is_superuser and op.is_staff
    password = (tmp_path / "operator-password").read_text().strip()
    assert f"operator: operator / {password}" in out.getvalue()
    assert op.check_password(password) and len(password) >= 16
    # Idempotent: the second run changes nothing and prints the same password.
    again = StringIO()
    call_command("demo", stdout=again)
    assert f"operator / {password}" in again.getvalue() and users.count() == 2


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_console_shows_runtime_hosts_celery_redis_stuck_builds_and_top_tenants(
    runtime, start_worker, tenant, worker, settings
):
    import json
    from datetime import timedelta

    from django.utils import timezone

    from telemetry.ingest import store_runtime_batch

    start_worker()
    deployment = create_deployment(worker, GREETER)
    Deployment.objects.filter(pk=deployment.pk).update(
        status="building",
        updated=timezone.now() - timedelta(seconds=settings.BUILD_DEADLINE_SECONDS + 60),
    )
    store_runtime_batch(json.dumps({"invocations": [
        {"requestId": f"op{k}", "deploymentId": str(deployment.code), "function": "hello",
         "status": "ok" if k % 4 else "error", "statusCode": 200 if k % 4 else 500,
         "durationMs": 100.0, "startedAt": timezone.now().isoformat()} for k in range(8)
    ], "logs": []}).encode())  # fmt: skip
    client = client_for(Client, operator())

    def page():
        return client.get(reverse("operators")).content.decode()

    # The runtime host reports every 5 s; its process id shows with its isolates and memory.
    health = httpx.get(f"{settings.RUNTIME_URL}/healthz").json()
    wait_for(lambda: f"<td>{health['pid']}</td>" in page(), 15, "the host's heartbeat", 0.5)
    text = page()
    assert "reachable" in text and "1 worker" in text
    assert f"{worker.name} · {deployment.short_id}" in text  # stuck past its deadline
    assert "<td>8</td><td>2</td><td>0.8</td>" in text  # top tenants: calls, errors, compute
