"""Tenant pages: what members see and may do, and that outsiders get 404 everywhere."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import Deployment
from releases.production import auto_promote
from tenancy.models import Tenant
from workers.models import Worker

from .conftest import client_for, make_operator
from .helpers import GREETER, create_deployment


def worker_urls(worker, deployment):
    return [
        ("get", reverse("worker", args=[worker.code])),
        ("get", reverse("worker-deployments", args=[worker.code])),
        ("get", reverse("worker-settings", args=[worker.code])),
        ("post", reverse("redeploy", args=[worker.code])),
        ("post", reverse("worker-visibility", args=[worker.code])),
        ("get", reverse("delete-worker", args=[worker.code])),
        ("post", reverse("delete-worker", args=[worker.code])),
        ("get", reverse("deployment", args=[deployment.code])),
        ("get", reverse("deployment-diff", args=[deployment.code])),
        ("get", reverse("deployment-panel", args=[deployment.code])),
        ("get", reverse("deployment-badge", args=[deployment.code])),
        ("post", reverse("invoke", args=[deployment.code])),
        ("get", reverse("promote", args=[deployment.code])),
        ("post", reverse("promote", args=[deployment.code])),
        ("get", reverse("canary-start", args=[deployment.code])),
        ("post", reverse("canary-start", args=[deployment.code])),
        ("get", reverse("worker-canary", args=[worker.code])),
        ("get", reverse("worker-state", args=[worker.code])),
        ("get", reverse("worker-health", args=[worker.code])),
        ("get", reverse("deployment-state", args=[deployment.code])),
        ("post", reverse("worker-canary-change", args=[worker.code])),
    ]


def test_outsider_gets_404_on_every_worker_and_deployment_page_and_partial(
    worker, deployment, outsider
):
    client = client_for(Client, outsider)
    for method, url in worker_urls(worker, deployment):
        response = getattr(client, method)(url, {"source": GREETER}, HTTP_HX_REQUEST="true")
        assert response.status_code == 404, (method, url)
    # Nothing of the other tenant shows on the outsider's own dashboard either.
    assert "greeter" not in client.get(reverse("dashboard")).content.decode()
    assert Deployment.objects.count() == 1  # the refused redeploy created nothing


def test_anonymous_visitors_are_sent_to_log_in(worker, deployment):
    client = Client()
    for method, url in worker_urls(worker, deployment):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_dashboard_lists_workers_with_status_badges(owner_client, worker, deployment):
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert "greeter" in page
    assert "badge-queued" in page


def test_new_worker_form_creates_worker_and_first_deployment(owner_client, tenant, owner):
    response = owner_client.post(reverse("new-worker"), {"name": "my-fn", "source": GREETER})
    worker = Worker.objects.get(tenant=tenant, name="my-fn")
    assert response.status_code == 302
    assert response["Location"] == reverse("worker", args=[worker.code])
    deployment = worker.deployments.get()
    assert deployment.status == Deployment.Status.QUEUED
    assert deployment.source == GREETER and deployment.created_by == owner


@pytest.mark.parametrize(
    "name, source, message",
    [
        ("Bad Name", GREETER, "Use lowercase letters"),
        ("a--b", GREETER, "Use lowercase letters"),
        ("ok", "   ", "The module is empty"),
    ],
)
def test_new_worker_form_explains_bad_input(owner_client, tenant, name, source, message):
    response = owner_client.post(reverse("new-worker"), {"name": name, "source": source})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Worker.objects.exists()


def test_too_large_module_is_refused_with_the_limit(owner_client, settings):
    settings.MAX_SOURCE_BYTES = 100
    response = owner_client.post(reverse("new-worker"), {"name": "big", "source": "x" * 101})
    assert "the limit is 100 bytes" in response.content.decode()
    assert not Worker.objects.exists()


def test_duplicate_worker_name_is_refused(owner_client, worker):
    response = owner_client.post(reverse("new-worker"), {"name": "greeter", "source": GREETER})
    assert "exists already" in response.content.decode()
    assert Worker.objects.count() == 1


def test_deployments_tab_shows_deployments_newest_first_and_redeploy_form(
    owner_client, worker, deployment
):
    newer = create_deployment(worker, GREETER.replace("hello called", "hello again"))
    page = owner_client.get(reverse("worker-deployments", args=[worker.code])).content.decode()
    assert page.index(newer.short_id) < page.index(deployment.short_id)
    assert "hello again" in page  # the redeploy form starts from the newest code
    assert reverse("redeploy", args=[worker.code]) in page


def test_redeploy_creates_a_new_immutable_deployment(owner_client, worker, deployment):
    response = owner_client.post(
        reverse("redeploy", args=[worker.code]), {"source": GREETER + "\n// v2\n"}
    )
    assert response.status_code == 302
    assert worker.deployments.count() == 2
    deployment.refresh_from_db()
    assert deployment.source == GREETER  # the earlier one is untouched


def test_status_partial_polls_while_building_and_stops_when_terminal(owner_client, deployment):
    url = reverse("deployment-panel", args=[deployment.code])
    polling = owner_client.get(url, HTTP_HX_REQUEST="true")
    assert polling.status_code == 200
    assert 'hx-trigger="every 1s"' in polling.content.decode()
    assert "Waiting for a builder" in polling.content.decode()

    deployment.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    deployment.transition(
        Deployment.Status.BUILDING, Deployment.Status.ERROR, error_message="line 2: broken"
    )
    done = owner_client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx stops polling
    body = done.content.decode()
    assert "hx-trigger" not in body
    assert "The build failed" in body and "line 2: broken" in body


def test_badge_partial_stops_polling_when_terminal(owner_client, deployment):
    url = reverse("deployment-badge", args=[deployment.code])
    assert owner_client.get(url, HTTP_HX_REQUEST="true").status_code == 200
    deployment.transition(Deployment.Status.QUEUED, Deployment.Status.CANCELED)
    assert owner_client.get(url, HTTP_HX_REQUEST="true").status_code == 286


def test_viewer_reads_but_may_not_deploy_or_invoke(client, viewer, worker, deployment):
    client.force_login(viewer)
    assert client.get(reverse("worker", args=[worker.code])).status_code == 200
    assert (
        client.post(reverse("redeploy", args=[worker.code]), {"source": GREETER}).status_code == 403
    )
    assert (
        client.post(reverse("invoke", args=[deployment.code]), {"function": "hello"}).status_code
        == 403
    )
    assert client.post(reverse("new-worker"), {"name": "x", "source": GREETER}).status_code == 403
    assert Deployment.objects.count() == 1


def test_invoke_panel_refuses_a_deployment_that_is_not_ready(owner_client, deployment):
    response = owner_client.post(
        reverse("invoke", args=[deployment.code]),
        {"function": "hello", "payload": "{}"},
        HTTP_HX_REQUEST="true",
    )
    assert "only ready ones run" in response.content.decode()


def test_login_page_and_admin_render(client, db):
    assert client.get(reverse("login")).status_code == 200
    page = client.get(reverse("login")).content.decode()
    assert 'name="login"' in page and "Forgot your password?" in page
    # The admin signs in through the portal's page (throttled and audited as every sign-in).
    admin = client.get("/admin/login/?next=/admin/")
    assert admin.status_code == 302 and admin["Location"] == "/login/?next=%2Fadmin%2F"


def test_worker_page_panel_refreshes_the_production_url_when_the_build_ends(
    owner_client, worker, deployment
):
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "Not live yet" in page
    assert f"{reverse('deployment-panel', args=[deployment.code])}?on=worker" in page

    deployment.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    deployment.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    auto_promote(deployment)
    url = reverse("deployment-panel", args=[deployment.code]) + "?on=worker"
    body = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert f'id="production-{worker.code}" class="panel" hx-swap-oob="true"' in body
    assert f"{worker.host}.localhost" in body and "Not live yet" not in body


def test_worker_visibility_toggle(owner_client, viewer, worker):
    assert not worker.public
    page = owner_client.get(reverse("worker", args=[worker.code])).content.decode()
    assert "Private" in page and "Make public" in page
    owner_client.post(reverse("worker-visibility", args=[worker.code]), {"public": "1"})
    worker.refresh_from_db()
    assert worker.public
    viewer_client = client_for(Client, viewer)
    assert (
        viewer_client.post(
            reverse("worker-visibility", args=[worker.code]), {"public": "0"}
        ).status_code
        == 403
    )
    worker.refresh_from_db()
    assert worker.public


def test_delete_worker_asks_for_its_name(owner_client, viewer, worker, deployment):
    url = reverse("delete-worker", args=[worker.code])
    assert "Type the worker" in owner_client.get(url).content.decode()
    wrong = owner_client.post(url, {"confirm_name": "nope"})
    assert wrong.status_code == 400 and Worker.objects.filter(pk=worker.pk).exists()
    assert client_for(Client, viewer).post(url, {"confirm_name": "greeter"}).status_code == 403
    assert owner_client.post(url, {"confirm_name": "greeter"}).status_code == 302
    assert not Worker.objects.filter(pk=worker.pk).exists() and not Deployment.objects.exists()


def test_operators_see_each_tenants_usage_in_the_admin(client, tenant, worker, deployment):

    operator = make_operator("operator")
    client.force_login(operator)
    page = client.get("/admin/tenancy/tenant/").content.decode()
    assert "Acme" in page and "1 / 100" in page and "1 / 60" in page


def test_the_worker_page_says_when_production_runs_with_old_secrets(owner_client, worker):
    from deployments.deploy import snapshot_secrets
    from workers.models import WorkerSecret
    from workers.secrets import encrypt

    WorkerSecret.objects.create(worker=worker, name="TOKEN", value_encrypted=encrypt("one"))
    deployment = Deployment.objects.create(
        worker=worker, source=GREETER, secrets_sealed=snapshot_secrets(worker)
    )
    deployment.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    deployment.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    auto_promote(deployment)
    url = reverse("worker", args=[worker.code])
    assert "still runs with the secrets" not in owner_client.get(url).content.decode()

    owner_client.post(
        reverse("worker-secrets", args=[worker.code]), {"name": "TOKEN", "value": "two"}
    )
    owner_client.post(
        reverse("worker-secrets", args=[worker.code]), {"name": "EXTRA", "value": "x"}
    )
    page = owner_client.get(url).content.decode()
    assert (
        "still runs with the secrets" in page and "<code>EXTRA</code>, <code>TOKEN</code>" in page
    )
    assert reverse("redeploy-production", args=[worker.code]) in page
    assert "one" not in page.split("still runs")[1].split("</div>")[0]  # names, never values

    assert owner_client.post(reverse("redeploy-production", args=[worker.code])).status_code == 302
    fresh = worker.deployments.order_by("-created", "-id").first()
    assert fresh != deployment and fresh.source == deployment.source
    from workers.secrets import unseal

    assert unseal(fresh.secrets_sealed) == {"TOKEN": "two", "EXTRA": "x"}


def test_copy_buttons_carry_the_exact_text(owner_client, worker):
    deployment = create_deployment(worker, GREETER)
    deployment.transition(Deployment.Status.QUEUED, Deployment.Status.BUILDING)
    deployment.transition(Deployment.Status.BUILDING, Deployment.Status.READY, functions=["hello"])
    page = owner_client.get(reverse("deployment", args=[deployment.code])).content.decode()
    # The placeholder is text, escaped, never swallowed as a tag; the button copies the same.
    curl = (
        f"curl -X POST {deployment.url}/api/invoke/hello -H &#x27;Authorization: Bearer "
        "&lt;API key&gt;&#x27; -H &#x27;content-type: application/json&#x27; -d &#x27;{}&#x27;"
    )
    assert f'<pre class="code copy curl">{curl}</pre>' in page
    assert f'<clipboard-copy value="{curl}"' in page
    assert "vendor/clipboard-copy-element-1.3.2.js" in page


def test_the_worker_page_is_in_tabs_each_with_its_own_url(owner_client, viewer, worker):
    deployment = create_deployment(worker, GREETER)
    tabs = {
        "worker": "Recent deployments",
        "worker-deployments": "Deploy a new version",
        "worker-logs": "Live logs",
        "worker-settings": "Who may call it",
    }
    for name, shown in tabs.items():
        url = reverse(name, args=[worker.code])
        page = owner_client.get(url).content.decode()
        assert shown in page, name
        assert f'<a href="{url}" aria-current="page">' in page, name  # the tab it is on
        assert 'hx-boost="true"' in page  # tabs switch without a full reload
    assert deployment.short_id in owner_client.get(reverse("worker", args=[worker.code])).text
    # A viewer sees the tabs, without what only others may do.
    viewing = client_for(Client, viewer)
    settings_page = viewing.get(reverse("worker-settings", args=[worker.code])).content.decode()
    assert "Manage settings and secrets" not in settings_page and "Delete…" not in settings_page
    assert (
        "Deploy a new version"
        not in viewing.get(reverse("worker-deployments", args=[worker.code])).content.decode()
    )


def test_the_dashboard_shows_each_live_workers_production_url_in_a_fixed_number_of_queries(
    owner_client, tenant
):
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for n in range(3):
        w = Worker.objects.create(tenant=tenant, name=f"w{n}")
        d = create_deployment(w, GREETER)
        d.transition("queued", "building")
        d.transition("building", "ready", functions=["hello"])
        auto_promote(d)
    page = owner_client.get(reverse("dashboard")).content.decode()
    assert f"<code>http://w0--{tenant.slug}.{settings.RUNTIME_DOMAIN}" in page
    with CaptureQueriesContext(connection) as few:
        owner_client.get(reverse("dashboard"))
    for n in range(3, 13):
        create_deployment(Worker.objects.create(tenant=tenant, name=f"w{n}"), GREETER)
    with CaptureQueriesContext(connection) as many:
        owner_client.get(reverse("dashboard"))
    assert len(many.captured_queries) == len(few.captured_queries)  # not one per worker


def test_the_dashboard_lists_workers_a_page_at_a_time_and_finds_them_by_name(owner_client, tenant):
    Worker.objects.bulk_create([Worker(tenant=tenant, name=f"w{n:03d}") for n in range(60)])
    Worker.objects.create(tenant=Tenant.objects.create(slug="else", name="Else"), name="w999")

    def names(**query):
        page = owner_client.get(reverse("dashboard"), query).content.decode()
        return re.findall(r">(w\d{3})</a>", page), page

    first, page = names()
    assert first == [f"w{n:03d}" for n in range(50)]
    assert "Workers 1–50 of 60" in page and 'rel="next"' in page and 'rel="prev"' not in page
    second, page = names(page=2)
    assert second == [f"w{n:03d}" for n in range(50, 60)] and 'rel="prev"' in page
    assert names(page="nonsense")[0] == first  # a bad page number shows the first
    assert names(q="W05")[0] == [f"w05{n}" for n in range(10)]
    nothing, page = names(q="w999")  # another tenant's
    assert nothing == [] and "No worker's name holds “w999”." in page
