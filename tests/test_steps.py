"""Durable steps through the real runtime and Celery: a step that finished runs once, however
often the run is retried or resumed; a sleep parks the run and it resumes on time; a wait
resumes on the event sent to it (matched on a field) or answers null at its timeout; the
journal is read back through the API."""

import json
import time

import httpx
import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from kv import store
from runs import lifecycle
from runs.lifecycle import accept
from runs.models import Run
from runtime_api import views
from tenancy.models import AuditEvent
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import lose_redis, start_runtime, wait_for
from .helpers import built_with_namespace, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHECKOUT = program("state/checkout")


def deployed(tenant):
    return built_with_namespace(tenant, "shop", CHECKOUT, retry_backoff_seconds=0.5)


def status(run) -> str:
    return Run.objects.get(pk=run.pk).status


def told(run, what: str):
    """What a timed-out wait names: the run's row and its attempts, as found then."""

    def explain() -> str:
        row = Run.objects.get(pk=run.pk)
        attempts = list(row.attempt_set.values_list("outcome", "error_code", "started_at"))
        return (f"{what}; it is {row.status}, due {row.next_attempt_at} (now "
                f"{timezone.now()}), attempts {attempts}")  # fmt: skip

    return explain


def test_a_run_in_steps_charges_once_sleeps_waits_and_is_retried(
    runtime, start_worker, tenant, owner, client
):
    start_worker()
    worker, ns, deployment = deployed(tenant)
    run, _ = accept(deployment, "checkout", json.dumps({"order": "o1"}))
    # (bounds for a machine running the whole suite: the run sleeps 2 s)
    wait_for(lambda: status(run) == "sleeping", 60, told(run, "the run to sleep"))
    parked = Run.objects.get(pk=run.pk)
    assert parked.steps.get(name="charge").status == "done"
    wait_for(lambda: status(run) == "waiting", 60, told(run, "the run to wake and wait"))
    api = Client(HTTP_AUTHORIZATION=f"Bearer {issue_key(tenant, 'ops', ['invoke', 'read'])[1]}")
    seen = api.get(f"/api/runs/{run.code}").json()
    assert [(s["name"], s["kind"], s["status"]) for s in seen["steps"]] == [
        ("charge", "run", "done"), ("cool-off", "sleep", "done"), ("approved", "wait", "parked"),
    ]  # fmt: skip
    assert seen["steps"][2]["event"] == "approved" and seen["steps"][2]["match"] == {"order": "o1"}
    # Each step's own console lines (not the function's, printed outside the steps).
    charge = seen["steps"][0]
    assert [line["message"] for line in charge["logs"]] == ["charging o1"]
    assert charge["startedAt"] < charge["finishedAt"]

    # The run's page shows the steps; an event sent there for another order does not fit the
    # wait (and a payload that is not JSON is refused); the right one, by the API, resumes it.
    client.force_login(owner)
    page = client.get(f"/runs/{run.code}/").content.decode()
    assert "charge" in page and "cool-off" in page and "for the event <code>approved</code>" in page
    bad = client.post(f"/runs/{run.code}/event/", {"name": "approved", "payload": "{nope"})
    assert bad.status_code == 400 and "not JSON" in bad.content.decode()
    other = client.post(
        f"/runs/{run.code}/event/", {"name": "approved", "payload": '{"order": "o2"}'}
    )
    assert other.status_code == 302 and run.events.count() == 1
    time.sleep(1)
    assert status(run) == "waiting"
    approved = api.post(f"/api/runs/{run.code}/events",
                        {"name": "approved", "payload": {"order": "o1", "by": "ann"}},
                        content_type="application/json")  # fmt: skip
    assert approved.status_code == 202, approved.content
    wait_for(lambda: status(run) == "succeeded", 60, "the run to finish")
    done = Run.objects.get(pk=run.pk)
    assert json.loads(done.result) == {
        "charged": {"charge": "ch_o1"}, "approvedBy": "ann", "mailed": {"tries": 2},
    }  # fmt: skip
    # The charge ran once although the function ran five times (first, after the sleep, on
    # the event, and the mail's retry); the mail ran twice (it failed once).
    assert bytes(store.get(ns, "charges:o1").value) == b"1"
    assert bytes(store.get(ns, "mails:o1").value) == b"2"
    outcomes = list(done.attempt_set.values_list("outcome", flat=True))
    assert outcomes.count("parked") == 2 and outcomes[-2:] == ["error", "ok"], outcomes
    mail = done.steps.get(name="mail")
    assert mail.tries == 2 and mail.status == "done"
    finished = api.get(f"/api/runs/{run.code}").json()["steps"]
    assert [line["message"] for line in finished[3]["logs"]] == ["mailing, try 2"]  # its last try
    page = client.get(f"/runs/{run.code}/").content.decode()
    assert "log charging o1" in page and "log mailing, try 2" in page


def test_a_wait_answers_null_at_its_timeout_and_steps_need_a_run(runtime, start_worker, tenant):
    start_worker()
    _, _, deployment = deployed(tenant)
    run, _ = accept(deployment, "unanswered", "null")
    wait_for(lambda: status(run) == "waiting", 30, "the run to wait")
    wait_for(lambda: status(run) == "succeeded", 30, "the wait to time out")
    assert json.loads(Run.objects.get(pk=run.pk).result) == {"answer": None}
    # A run of code that names a step twice fails with the reason; outside a run, steps throw.
    twice, _ = accept(deployment, "misuse", json.dumps({"what": "twice"}))
    wait_for(lambda: status(twice) == "succeeded", 30, "the misuse run")
    assert "unique in a run" in Run.objects.get(pk=twice.pk).result
    # A step that keeps failing: the dead letter names it.
    Worker.objects.filter(pk=deployment.worker_id).update(retry_attempts=2)
    deployment.worker.refresh_from_db()
    dead, _ = accept(deployment, "flaky", "null")
    wait_for(lambda: status(dead) == "dead", 60, told(dead, "the run to be a dead letter"))
    letter = Run.objects.get(pk=dead.pk)
    assert letter.error_message.startswith('Step "flaky" failed: the bank said no'), (
        letter.error_message
    )
    assert letter.steps.get(name="flaky").tries == 2 and letter.steps.get(name="steady").tries == 1
    direct = httpx.post(f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/misuse",
                        json={"what": "once"}, timeout=30).json()  # fmt: skip
    assert "keeps its steps in a durable run" in direct["result"]


def test_a_host_killed_mid_step_runs_that_step_again_and_never_a_finished_one(
    runtime, start_worker, tenant, monkeypatch
):
    host, url = start_runtime()
    monkeypatch.setenv("RUNTIME_URL", url)  # the Celery worker calls this host
    start_worker()
    _, ns, deployment = deployed(tenant)
    Worker.objects.filter(pk=deployment.worker_id).update(timeout_seconds=10)
    run, _ = accept(deployment, "twoSteps", json.dumps({"ms": 3000}))
    wait_for(lambda: store.get(ns, "second") is not None, 30, "the second step to start")
    host.kill()  # SIGKILL while the second step runs
    replacement = start_runtime(RUNTIME_PORT=url.rsplit(":", 1)[1])[0]
    try:
        wait_for(lambda: status(run) == "succeeded", 90, "the run on the replacement")
    finally:
        replacement.stop()
        host.stop()
    assert bytes(store.get(ns, "first").value) == b"1"  # finished: never again
    assert bytes(store.get(ns, "second").value) == b"2"  # unfinished: at least once more
    assert [s.status for s in Run.objects.get(pk=run.pk).steps.all()] == ["done", "done"]


def test_a_parked_run_whose_message_redis_lost_is_resumed_by_the_sweep(
    runtime, start_worker, tenant, settings
):
    settings.RUN_LEASE_MARGIN_SECONDS = 1
    first = start_worker()
    _, _, deployment = deployed(tenant)
    run, _ = accept(deployment, "nap", json.dumps({"for": "2s"}))
    wait_for(lambda: status(run) == "sleeping", 30, told(run, "the run to sleep"))
    first.stop()  # its message for the wake-up goes back to Redis, which then loses it
    lose_redis(settings.REDIS_URL)
    start_worker()
    time.sleep(3.5)
    assert status(run) == "sleeping"  # kept in Postgres, nobody woke it
    assert lifecycle.sweep()["enqueued"] == 1
    wait_for(lambda: status(run) == "succeeded", 30, "the resumed run")
    assert json.loads(Run.objects.get(pk=run.pk).result) == "rested"


def test_code_sends_events_to_its_tenants_runs_and_no_others(
    runtime, start_worker, tenant, other_tenant
):
    start_worker()
    _, _, deployment = deployed(tenant)
    run, _ = accept(deployment, "checkout", json.dumps({"order": "o7", "coolOff": "1s"}))
    wait_for(lambda: status(run) == "waiting", 30, "the run to wait")
    approve = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/approve"
    # To every run of this worker that waits for it (no run named): this one.
    sent = httpx.post(approve, json={"order": "o7", "by": "code"}, timeout=30).json()["result"]
    assert sent == {"delivered": [str(run.code)]}
    wait_for(
        lambda: Run.objects.get(pk=run.pk).steps.filter(name="mail").exists(),
        30,
        "the run to go on",
    )
    assert AuditEvent.objects.filter(action="run.event", actor_label="worker shop").exists()
    # Another tenant's run is not there for this code, whatever its id.
    theirs_worker = Worker.objects.create(tenant=other_tenant, name="theirs")
    theirs = Run.objects.create(tenant=other_tenant, worker=theirs_worker, deployment=deployment,
                                function="checkout", status="waiting")  # fmt: skip
    refused = httpx.post(
        approve, json={"run": str(theirs.code), "order": "o7", "by": "x"}, timeout=30
    )
    assert refused.json()["result"]["code"] == "run_not_found"
    assert not theirs.events.exists()


def test_a_journal_out_of_reach_fails_the_attempt_as_the_platforms(
    runtime, start_worker, tenant, monkeypatch
):
    start_worker()
    _, ns, deployment = deployed(tenant)
    failed_once = []
    serve = views.DOING["steps"]

    def journal_away_once(d, raw, counted):
        # The second step's result cannot be recorded the first time (Postgres restarting).
        if (
            b'"name": "second"' in raw.replace(b'":"', b'": "')
            and b'"done"' in raw
            and not failed_once
        ):
            failed_once.append(True)
            return HttpResponse("database unavailable", status=503)
        return serve(d, raw, counted)

    monkeypatch.setitem(views.DOING, "steps", journal_away_once)
    run, _ = accept(deployment, "twoSteps", json.dumps({"ms": 0}))
    wait_for(lambda: status(run) == "succeeded", 60, "the run")
    outcomes = list(Run.objects.get(pk=run.pk).attempt_set.values_list("outcome", "error_code"))
    assert outcomes == [("platform", "control_plane_unavailable"), ("ok", "")], outcomes
    assert bytes(store.get(ns, "first").value) == b"1"  # finished: not again
    assert bytes(store.get(ns, "second").value) == b"2"  # not recorded: run again
