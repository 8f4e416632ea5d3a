"""Events sent to a tenant's own systems: the types it chose, signed as Standard Webhooks
specify (verified here with their reference library), retried with backoff, failed after
their attempts, redelivered with the same id, paused and resumed without loss; private
addresses refused; only owners and admins, and nobody outside the tenant."""

import json
from datetime import timedelta

import pytest
from celery import current_app
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from deployments.deploy import deploy, refuse
from deployments.models import Deployment
from releases.production import AUTOMATIC, end_canary, set_production, start_canary
from runs.models import Run, Schedule
from telemetry.webhooks import deliver_due
from tenancy.models import Delivery, Event, EventSubscription
from workers.api_keys import issue_key

from .conftest import client_for, form_post, portal_session, wait_for
from .helpers import GREETER, TYPE_ERROR
from .receivers import Receiver

S = Deployment.Status


def verified(receiver: Receiver, secret: str) -> list[dict]:
    """Every delivery, each verified as a receiver would (raises if one is not)."""
    return [Webhook(secret).verify(body, headers) for headers, body in receiver.received]


@pytest.fixture
def receiver():
    with Receiver(fail_status=500) as r:
        yield r


def ready(deployment):
    assert deployment.transition(S.QUEUED, S.BUILDING)
    assert deployment.transition(S.BUILDING, S.READY)


def due_now():
    Delivery.objects.update(next_attempt_at=timezone.now())


def test_a_subscription_hears_what_it_chose_signed_and_in_its_own_words(
    owner_client, worker, receiver, settings
):
    refused = owner_client.post(reverse("events"), {"url": receiver.url})
    assert refused.status_code == 400
    assert "127.0.0.1 is a loopback, private or reserved address" in refused.content.decode()
    settings.DRAIN_ALLOW_PRIVATE = True
    chosen = ["deployment.created", "deployment.ready", "deployment.failed",
              "deployment.promoted", "deployment.rolled_back", "canary.rolled_back"]  # fmt: skip
    made = owner_client.post(reverse("events"), {"url": receiver.url, "types": chosen})
    subscription = EventSubscription.objects.get()
    assert subscription.secret in made.content.decode()  # shown once
    assert subscription.secret not in owner_client.get(reverse("events")).content.decode()

    first = deploy(worker, GREETER)
    ready(first)
    set_production(worker, first, "olivia")
    second = deploy(worker, GREETER.replace("Hello", "Hi"))
    ready(second)
    set_production(worker, second, "olivia")
    set_production(worker, first, "olivia")  # a rollback
    start_canary(worker, second, 10, "olivia")
    end_canary(worker, AUTOMATIC, promote=False, note="failed 40% of 100 calls")
    refuse(worker, "The upload is not a tar.gz archive.")
    assert deliver_due() == 10

    got = verified(receiver, subscription.secret)
    assert [e["type"] for e in got] == [
        "deployment.created", "deployment.ready", "deployment.promoted",
        "deployment.created", "deployment.ready", "deployment.promoted",
        "deployment.rolled_back", "canary.rolled_back",
        "deployment.created", "deployment.failed",
    ]  # fmt: skip
    ready_event = next(e for e in got if e["type"] == "deployment.ready")
    assert ready_event["tenant"] == worker.tenant.slug
    assert ready_event["data"]["worker"] == worker.name
    assert ready_event["data"]["deployment"]["id"] == str(first.code)
    assert ready_event["data"]["deployment"]["url"] == first.url
    canary = next(e for e in got if e["type"] == "canary.rolled_back")["data"]
    assert canary["automatic"] is True and canary["reason"] == "failed 40% of 100 calls"
    assert canary["deployment"]["shortId"] == second.short_id
    failed = [e for e in got if e["type"] == "deployment.failed"][-1]["data"]["deployment"]
    assert failed["error"] == "The upload is not a tar.gz archive."
    headers = receiver.received[0][0]
    assert headers["webhook-id"] == got[0]["id"] and headers["webhook-id"].startswith("evt_")
    assert deliver_due() == 0  # nothing twice

    page = owner_client.get(reverse("events")).content.decode()
    assert "deployment.rolled_back" in page and "Delivered" in page and "200 in" in page


def test_failed_deliveries_back_off_fail_and_redeliver_with_the_same_id(
    owner, worker, receiver, settings
):
    settings.DRAIN_ALLOW_PRIVATE = True
    settings.EVENT_ATTEMPTS = 2
    key = issue_key(worker.tenant, "ops", ["manage", "read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    made = api.post("/api/events/subscriptions", {"url": receiver.url, "types": ["run.dead"]},
                    content_type="application/json").json()  # fmt: skip
    deployment = deploy(worker, GREETER)
    ready(deployment)  # not chosen: nothing stored for it
    assert not Event.objects.exists()
    schedule = Schedule.objects.create(tenant=worker.tenant, worker=worker, function="hello",
                                       cron="* * * * *")  # fmt: skip
    run = Run.objects.create(tenant=worker.tenant, worker=worker, deployment=deployment,
                             function="hello", status=Run.Status.RUNNING, attempts=3,
                             schedule=schedule)  # fmt: skip
    assert run.transition(Run.Status.RUNNING, Run.Status.DEAD, error_code="function_error",
                          error_message="TypeError: boom")  # fmt: skip

    receiver.fail = 3
    assert deliver_due() == 0
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.status_code == 500 and delivery.answer == "database is down"
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=1)  # backs off
    assert deliver_due() == 0  # not due yet
    due_now()
    assert deliver_due() == 0
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 2
    listed = api.get("/api/events/deliveries?status=failed").json()["deliveries"]
    assert listed[0]["statusCode"] == 500 and listed[0]["error"] == "Answered 500."
    assert listed[0]["event"]["data"]["run"]["error"] == "TypeError: boom"

    redelivered = api.post(f"/api/events/deliveries/{listed[0]['id']}/redeliver")
    assert redelivered.status_code == 202 and redelivered.json()["status"] == "pending"
    receiver.fail = 1
    assert deliver_due() == 0
    due_now()
    assert deliver_due() == 1
    ((headers, body),) = receiver.received
    assert headers["webhook-id"] == listed[0]["event"]["id"]  # the same event, once received
    event = Webhook(made["secret"]).verify(body, headers)
    assert event["type"] == "run.dead" and event["data"]["run"]["id"] == str(run.code)
    assert Delivery.objects.get().status == "delivered"


def test_a_scheduled_run_that_fails_is_told_with_its_schedule(worker, receiver, settings):
    settings.DRAIN_ALLOW_PRIVATE = True
    key = issue_key(worker.tenant, "ops", ["manage", "read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    made = api.post("/api/events/subscriptions", {"url": receiver.url,
                    "types": ["schedule.failed"]}, content_type="application/json").json()  # fmt: skip
    deployment = deploy(worker, GREETER)
    ready(deployment)
    schedule = Schedule.objects.create(tenant=worker.tenant, worker=worker, function="hello",
                                       cron="*/5 * * * *")  # fmt: skip
    for scheduled in (schedule, None):  # a run started by hand fails too: not a schedule's
        run = Run.objects.create(tenant=worker.tenant, worker=worker, deployment=deployment,
                                 function="hello", status=Run.Status.RUNNING, schedule=scheduled)  # fmt: skip
        assert run.transition(Run.Status.RUNNING, Run.Status.FAILED, error_code="timeout",
                              error_message="did not finish within 30000 ms")  # fmt: skip
    assert deliver_due() == 1
    (event,) = verified(receiver, made["secret"])
    assert event["type"] == "schedule.failed"
    assert event["data"]["schedule"] == {"id": str(schedule.code), "cron": "*/5 * * * *"}
    assert event["data"]["run"]["status"] == "failed"
    assert event["data"]["run"]["errorCode"] == "timeout"


def test_a_failing_url_pauses_and_resuming_loses_nothing(owner_client, worker, receiver, settings):
    settings.DRAIN_ALLOW_PRIVATE = True
    settings.EVENT_MAX_FAILURES = 2
    owner_client.post(reverse("events"), {"url": receiver.url})  # no types: every type
    subscription = EventSubscription.objects.get()
    receiver.fail = 2
    deploy(worker, GREETER)
    deploy(worker, GREETER)
    assert deliver_due() == 0
    subscription.refresh_from_db()
    assert subscription.status == "paused" and subscription.last_error == "Answered 500."
    due_now()
    assert deliver_due() == 0  # paused: nothing tried
    page = owner_client.get(reverse("events")).content.decode()
    assert "Paused" in page and "Resume" in page
    owner_client.post(reverse("subscription-act", args=[subscription.code, "resume"]))
    due_now()
    assert deliver_due() == 2
    assert [e["type"] for e in verified(receiver, subscription.secret)] == [
        "deployment.created"
    ] * 2
    owner_client.post(reverse("subscription-act", args=[subscription.code, "ping"]))
    assert deliver_due() == 1
    assert verified(receiver, subscription.secret)[-1]["type"] == "ping"


@pytest.fixture
def tasks_inline():
    """Celery tasks run where they are sent (no worker in this lane)."""
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = False


def test_a_refused_quota_is_told_once_an_hour(
    owner_client, worker, receiver, settings, tasks_inline
):
    settings.DRAIN_ALLOW_PRIVATE = True
    settings.QUOTA_MAX_DRAINS = 0
    owner_client.post(reverse("events"), {"url": receiver.url, "types": ["quota.reached"]})
    for _ in range(3):
        assert owner_client.post(reverse("drains"), {"url": receiver.url}).status_code == 409
    assert deliver_due() == 1
    (event,) = verified(receiver, EventSubscription.objects.get().secret)
    assert event["data"]["quota"] == "max_drains"
    assert "reached its quota of 0 log drains" in event["data"]["message"]


def test_events_are_for_owners_and_admins_and_hidden_from_outsiders(
    owner, developer, outsider, worker, tenant, settings
):
    settings.DRAIN_ALLOW_PRIVATE = True
    subscription = EventSubscription.objects.create(
        tenant=tenant, url="https://acme-hooks.example.org/", secret="whsec_c2VjcmV0"
    )
    deploy(worker, GREETER)
    delivery = Delivery.objects.get()
    assert client_for(Client, developer).get(reverse("events")).status_code == 403
    stranger = client_for(Client, outsider)
    for act in ("resume", "delete", "ping"):
        url = reverse("subscription-act", args=[subscription.code, act])
        assert stranger.post(url).status_code == 404
    assert stranger.post(reverse("redeliver", args=[delivery.code])).status_code == 404
    assert "acme-hooks" not in stranger.get(reverse("events")).content.decode()
    key = issue_key(outsider.memberships.get().tenant, "ops", ["manage", "read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.post(f"/api/events/subscriptions/{subscription.code}/ping").status_code == 404
    assert api.post(f"/api/events/deliveries/{delivery.code}/redeliver").status_code == 404
    assert api.delete(f"/api/events/subscriptions/{subscription.code}").status_code == 404
    assert json.loads(api.get("/api/events/deliveries").content)["deliveries"] == []
    assert EventSubscription.objects.filter(pk=subscription.pk).exists()


@pytest.mark.slow
def test_real_builds_tell_their_end_through_celery(
    live_server, start_worker, owner, tenant, receiver, monkeypatch
):
    monkeypatch.setenv("DRAIN_ALLOW_PRIVATE", "1")  # the worker process delivers to the test
    start_worker()
    subscription = EventSubscription.objects.create(
        tenant=tenant, url=receiver.url, secret="whsec_" + "c2VjcmV0IGtleSBvZiB0aGUgdGVzdA==",
        types=["deployment.ready", "deployment.failed"],
    )  # fmt: skip
    client = portal_session(live_server.url, owner.username)
    form_post(client, "/workers/new/", {"name": "greeter", "source": GREETER})
    form_post(client, "/workers/new/", {"name": "broken", "source": TYPE_ERROR})
    wait_for(lambda: len(receiver.received) == 2, 90, "both builds' events")
    got = {e["data"]["worker"]: e for e in verified(receiver, subscription.secret)}
    assert got["greeter"]["type"] == "deployment.ready"
    assert got["greeter"]["data"]["deployment"]["status"] == "ready"
    assert got["broken"]["type"] == "deployment.failed"
    assert "index.ts:" in got["broken"]["data"]["deployment"]["error"]
    wait_for(  # each marked once its answer came back
        lambda: set(Delivery.objects.values_list("status", flat=True)) == {"delivered"},
        10, "both deliveries marked",
    )  # fmt: skip


@pytest.fixture
def cli_through_django(monkeypatch, tmp_path):
    """The `functions` command, its requests answered by this process's Django (no server)."""
    import functions_cli.api
    import httpx
    from functions_cli.main import app
    from typer.testing import CliRunner

    def django(request: httpx.Request) -> httpx.Response:
        kept = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
        answer = Client().generic(
            request.method, request.url.raw_path.decode(), request.content,
            request.headers.get("content-type", ""), headers=kept,
        )  # fmt: skip
        return httpx.Response(
            answer.status_code, headers=dict(answer.items()), content=answer.content
        )

    through = httpx.Client(transport=httpx.MockTransport(django))
    monkeypatch.setattr(functions_cli.api.httpx, "request", through.request)

    def run(key: str, *args: str):
        env = {"FUNCTIONS_URL": "http://testserver", "FUNCTIONS_TOKEN": key,
               "FUNCTIONS_CONFIG": str(tmp_path / "none.json"), "COLUMNS": "200"}  # fmt: skip
        return CliRunner(env=env).invoke(app, list(args))

    return run


def test_the_cli_subscribes_pings_lists_redelivers_and_removes(
    cli_through_django, tenant, other_tenant, receiver, settings
):
    settings.DRAIN_ALLOW_PRIVATE = True
    key = issue_key(tenant, "ci", ["manage", "read"])[1]
    added = cli_through_django(key, "events", "add", receiver.url, "--type", "deployment.ready")
    assert added.exit_code == 0, added.output
    subscription = EventSubscription.objects.get(tenant=tenant)
    assert f"Signing secret (shown only now): {subscription.secret}" in added.output
    listed = json.loads(cli_through_django(key, "events", "list", "--json").output)
    assert [s["types"] for s in listed["subscriptions"]] == [["deployment.ready"]]
    assert "secret" not in listed["subscriptions"][0]

    pinged = cli_through_django(key, "events", "ping", receiver.url)
    assert pinged.exit_code == 0 and "ping  pending after 0 attempt(s)" in pinged.output
    assert deliver_due() == 1
    assert [e["type"] for e in verified(receiver, subscription.secret)] == ["ping"]
    shown = cli_through_django(key, "events", "deliveries", receiver.url, "--json")
    (delivery,) = json.loads(shown.output)["deliveries"]
    assert delivery["status"] == "delivered" and delivery["statusCode"] == 200

    again = cli_through_django(key, "events", "redeliver", delivery["id"])
    assert again.exit_code == 0, again.output
    assert deliver_due() == 1
    got = verified(receiver, subscription.secret)
    assert got[0]["id"] == got[1]["id"]  # the same webhook-id to the receiver

    # Another tenant's key finds nothing of it, by URL or by id.
    outsider = issue_key(other_tenant, "ci", ["manage", "read"])[1]
    for target in (receiver.url, str(subscription.code)):
        refused = cli_through_django(outsider, "events", "remove", target)
        assert refused.exit_code == 4 and "No subscription" in refused.output
    stolen = cli_through_django(outsider, "events", "redeliver", delivery["id"])
    assert stolen.exit_code == 4 and "No such delivery" in stolen.output
    assert EventSubscription.objects.filter(tenant=tenant).exists()

    removed = cli_through_django(key, "events", "remove", receiver.url)
    assert removed.exit_code == 0 and f"Removed {receiver.url}." in removed.output
    assert not EventSubscription.objects.exists()
