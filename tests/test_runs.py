"""Durable runs through the real processes: async calls stored before 202, their status URL,
Idempotency-Key, retries by policy, dead letters, and what survives a SIGKILL of a Celery
worker, of a runtime host, and a Redis that lost its queue."""

import time
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from deployments.models import Deployment
from runs import lifecycle
from runs.models import Run
from telemetry.models import Invocation
from tenancy.models import AuditEvent, Tenant
from workers.api_keys import issue_key
from workers.models import Worker

from .conftest import lose_redis, start_runtime, wait_for, within_one_minute
from .helpers import build_now, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CODE = program("runs/code")


def post(worker, fn, body=None, headers=None, query="") -> httpx.Response:
    return httpx.post(
        f"{settings.RUNTIME_URL}/d/{worker.host}/api/invoke/{fn}{query}",
        json=body or {}, headers=headers or {}, timeout=30,
    )  # fmt: skip


def settled(run_id: str, timeout: float = 30) -> Run:
    wait_for(lambda: not Run.objects.get(code=run_id).in_flight, timeout, "the run to end", 0.1)
    return Run.objects.get(code=run_id)


@pytest.fixture
def worker(tenant):
    worker = Worker.objects.create(
        tenant=tenant, name="jobs", public=True, retry_attempts=3, retry_backoff_seconds=0.2,
        retry_max_delay_seconds=1,
    )  # fmt: skip
    deployment = build_now(worker, CODE)
    assert deployment.status == "ready", deployment.error_message
    return worker


def test_an_async_call_is_stored_before_202_and_its_status_url_tells_the_result(
    runtime, start_worker, worker
):
    start_worker()
    accepted = post(worker, "hello", {"name": "Ann"}, {"Prefer": "respond-async"})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert accepted.headers["location"] == body["statusUrl"]
    assert body["status"] == "queued" and Run.objects.filter(code=body["runId"]).exists()
    run = settled(body["runId"])
    assert run.status == "succeeded"
    status = httpx.get(body["statusUrl"], timeout=10).json()  # a public worker's run: by its id
    assert status["status"] == "succeeded" and status["result"] == {"greeting": "Hello, Ann!"}
    [attempt] = status["attempts"]
    assert attempt["outcome"] == "ok" and attempt["logs"][0]["message"] == "hello to Ann"
    # The attempt is an invocation like any other, recorded as async, with its lines.
    wait_for(lambda: Invocation.objects.filter(request_id=attempt["requestId"]).exists(), 10, "it")
    assert Invocation.objects.get(request_id=attempt["requestId"]).trigger == "async"

    # ?async=1 is the same; the same Idempotency-Key gives the same run, once.
    first = post(worker, "hello", {}, {"Idempotency-Key": "order-42"}, "?async=1").json()
    again = post(worker, "hello", {}, {"Idempotency-Key": "order-42"}, "?async=1").json()
    assert first["runId"] == again["runId"]
    assert Run.objects.filter(idempotency_key="order-42").count() == 1
    # Bad input is refused before anything is stored.
    assert post(worker, "nope", {}, {"Prefer": "respond-async"}).status_code == 404
    bad = httpx.post(f"{settings.RUNTIME_URL}/d/{worker.host}/api/invoke/hello?async=1",
                     content="{nope", timeout=10)  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    assert Run.objects.count() == 2


def test_a_private_workers_run_is_read_with_the_key_that_started_it_or_a_read_key(
    runtime, start_worker, worker, tenant, other_tenant
):
    Worker.objects.filter(pk=worker.pk).update(public=False)
    # Hosts trust what they knew for up to two seconds: until they refuse an anonymous call.
    wait_for(lambda: post(worker, "hello", {}).status_code == 401, 10, "the worker to be private")
    invoker = issue_key(tenant, "invoker", ["invoke"])[1]
    start_worker()
    accepted = post(worker, "hello", {}, {"Prefer": "respond-async",
                                          "Authorization": f"Bearer {invoker}"})  # fmt: skip
    assert accepted.status_code == 202, accepted.text
    url = accepted.json()["statusUrl"]
    settled(accepted.json()["runId"])
    assert (
        httpx.get(url, headers={"Authorization": f"Bearer {invoker}"}).json()["status"]
        == "succeeded"
    )
    reader = issue_key(tenant, "reader", ["read"])[1]
    assert httpx.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    other_invoker = issue_key(tenant, "other", ["invoke"])[1]
    outsider = issue_key(other_tenant, "outsider", ["read", "invoke"])[1]
    for key in (other_invoker, outsider):
        assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 404
    assert httpx.get(url).status_code == 404


def test_retries_follow_the_policy_and_what_keeps_failing_becomes_a_dead_letter(
    runtime, start_worker, worker, tenant, owner, client
):
    start_worker()
    flaky = post(worker, "flaky", {}, {"Prefer": "respond-async"}).json()["runId"]
    run = settled(flaky)
    assert run.status == "succeeded" and run.result == '{"calls": 3}'
    outcomes = list(run.attempt_set.values_list("outcome", flat=True))
    assert outcomes == ["error", "error", "ok"]
    # Each attempt waited at least its backoff (0.2 s, doubled, halved by jitter at worst).
    times = list(run.attempt_set.values_list("started_at", flat=True))
    assert (times[1] - times[0]).total_seconds() >= 0.1

    broken = post(worker, "broken", {}, {"Prefer": "respond-async"}).json()["runId"]
    run = settled(broken)
    assert run.status == "dead" and run.attempts == 3
    assert run.error_code == "function_error" and "always broken" in run.error_message
    # A timeout is not retried when the policy says so.
    Worker.objects.filter(pk=worker.pk).update(retry_on=["error"])
    spin = post(worker, "spin", {}, {"Prefer": "respond-async"}).json()["runId"]
    run = settled(spin, 60)
    assert run.status == "dead" and run.attempts == 1 and run.error_code == "timeout"

    # Dead letters: listed in the API and the portal, replayed, discarded, audited.
    key = issue_key(tenant, "ops", ["read", "invoke"])[1]
    api = httpx.Client(base_url=settings.CONTROL_PLANE_URL,
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)  # fmt: skip
    letters = api.get(f"/api/workers/{worker.code}/dead-letters").json()["runs"]
    assert {r["id"] for r in letters} == {broken, spin}
    client.force_login(owner)
    page = client.get(f"/workers/{worker.code}/runs/").content.decode()
    assert "Dead letters" in page and "always broken" in page and "badge-dead" in page
    replayed = api.post(f"/api/runs/{broken}/replay", json={"onProduction": False})
    assert replayed.status_code == 202 and replayed.json()["replayOf"] == broken
    assert api.post(f"/api/runs/{spin}/discard").json()["discarded"] is True
    # The replay ran on the deployment it first ran on, failed the same way, and is now the
    # one dead letter; the originals are off the list.
    again = settled(replayed.json()["id"])
    assert again.status == "dead" and again.trigger == "replay"
    assert [r["id"] for r in api.get("/api/dead-letters").json()["runs"]] == [str(again.code)]
    assert api.post(f"/api/runs/{spin}/discard").status_code == 409
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"run.replay", "run.discard"} <= actions


def test_a_celery_worker_killed_mid_run_loses_nothing_and_succeeds_once(
    runtime, start_worker, worker, monkeypatch, settings
):
    monkeypatch.setenv("RUN_LEASE_MARGIN_SECONDS", "1")
    settings.RUN_LEASE_MARGIN_SECONDS = 1
    doomed = start_worker()
    run_id = post(worker, "slow", {"ms": 1500}, {"Prefer": "respond-async"}).json()["runId"]
    wait_for(lambda: Run.objects.get(code=run_id).status == "running", 15, "the attempt", 0.02)
    doomed.kill()  # SIGKILL, the whole worker with its pool
    time.sleep(0.2)
    assert Run.objects.get(code=run_id).status == "running"  # nobody will report it
    start_worker()
    # Its lease (the 2 s timeout and the 1 s margin) runs out; the sweep takes it back.
    wait_for(lambda: lifecycle.sweep()["taken_back"] == 1, 15, "the sweep to take it back", 0.2)
    run = settled(run_id)
    assert run.status == "succeeded" and run.result == '"slept"'
    assert list(run.attempt_set.values_list("outcome", flat=True)) == ["lost", "ok"]
    assert Run.objects.filter(code=run_id, status="succeeded").count() == 1


def test_a_runtime_host_killed_mid_run_is_retried_on_its_replacement(
    runtime, start_worker, worker, monkeypatch
):
    host, url = start_runtime()
    port = url.rsplit(":", 1)[1]
    monkeypatch.setenv("RUNTIME_URL", url)  # the Celery worker calls this host
    start_worker()
    Worker.objects.filter(pk=worker.pk).update(retry_backoff_seconds=2)
    run_id = post(worker, "slow", {"ms": 1000}, {"Prefer": "respond-async"}).json()["runId"]
    wait_for(lambda: Run.objects.get(code=run_id).status == "running", 15, "the attempt", 0.02)
    time.sleep(0.3)
    host.kill()  # SIGKILL mid-call
    replacement = start_runtime(RUNTIME_PORT=port)[0]  # on the same address
    try:
        run = settled(run_id)
    finally:
        replacement.stop()
        host.stop()
    assert run.status == "succeeded"
    attempts = list(run.attempt_set.values_list("outcome", "error_code"))
    # Until the replacement answered, each try failed on the platform's side: retried, and
    # not counted against the worker's 3 attempts.
    assert set(attempts[:-1]) == {("platform", "runtime_unavailable")}, attempts
    assert attempts[-1] == ("ok", ""), attempts


def test_runs_survive_a_redis_that_lost_its_queue(
    runtime, start_worker, worker, monkeypatch, settings
):
    settings.RUN_LEASE_MARGIN_SECONDS = 1
    # No Celery worker yet: the run waits in Redis, which then loses everything (a restart
    # without persistence), connections included.
    run_id = post(worker, "hello", {"name": "Bo"}, {"Prefer": "respond-async"}).json()["runId"]
    lose_redis(settings.REDIS_URL, connections=True)
    start_worker()
    time.sleep(1.5)
    assert Run.objects.get(code=run_id).status == "queued"  # stored, never lost
    assert lifecycle.sweep()["enqueued"] == 1
    run = settled(run_id)
    assert run.status == "succeeded" and run.attempts == 1


def test_a_message_that_comes_before_its_run_is_due_is_sent_again_for_then(
    runtime, start_worker, worker
):
    """A timer that fires a hair early, or a clock stepped back: the run is not taken up
    before its time, and it does not wait for the sweep (or its next message) either."""
    start_worker()
    run, _ = lifecycle.accept(
        Deployment.objects.get(worker=worker), "hello", '{"name": "Cy"}', delay=600
    )
    due = timezone.now() + timedelta(seconds=2)
    Run.objects.filter(pk=run.pk).update(next_attempt_at=due)
    lifecycle.send(run.pk)  # its message, early
    done = settled(str(run.code))
    assert done.status == "succeeded" and done.attempts == 1
    assert done.started_at >= due


def test_a_suspended_tenants_runs_wait_and_go_on_when_it_resumes(
    runtime, start_worker, worker, tenant, settings
):
    settings.RUN_LEASE_MARGIN_SECONDS = 0
    run_id = post(worker, "hello", {}, {"Prefer": "respond-async"}).json()["runId"]
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended")
    start_worker()
    time.sleep(1.5)
    assert Run.objects.get(code=run_id).status == "queued"
    assert lifecycle.sweep()["enqueued"] == 0  # a suspended tenant's runs are not taken up
    Tenant.objects.filter(pk=tenant.pk).update(status="active")
    assert lifecycle.sweep()["enqueued"] == 1
    assert settled(run_id).status == "succeeded"


def test_async_calls_count_against_the_tenants_quota_and_a_refused_one_is_not_stored(
    runtime, worker, tenant
):
    Tenant.objects.filter(pk=tenant.pk).update(max_invocations_per_minute=3)
    time.sleep(2.1)  # hosts trust what they knew for two seconds
    within_one_minute()
    answers = [post(worker, "hello", {}, {"Prefer": "respond-async"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert (
        answers[3].json()["error"]["code"] == "rate_limited" and "retry-after" in answers[3].headers
    )
    assert Run.objects.count() == 3


def test_a_replay_with_nothing_in_production_is_refused_with_its_reason(owner_client, worker):
    from django.urls import reverse

    from .helpers import create_deployment

    deployment = create_deployment(worker, "export async function hello() { return 1; }")
    Run.objects.filter(worker=worker).delete()
    dead = Run.objects.create(tenant=worker.tenant, worker=worker, deployment=deployment,
                              function="hello", status=Run.Status.DEAD)  # fmt: skip
    Worker.objects.filter(pk=worker.pk).update(production=None)  # as before its first promotion

    refused = owner_client.post(reverse("run-act", args=[dead.code, "replay"]))
    assert refused.status_code == 409
    assert "Not replayed: The worker serves nothing in production now." in refused.content.decode()
    everything = owner_client.post(reverse("worker-replay-all", args=[worker.code]))
    assert everything.status_code == 409 and "Not replayed" in everything.content.decode()
    dead.refresh_from_db()
    assert dead.discarded_at is None and Run.objects.count() == 1  # still a dead letter

    on_first = owner_client.post(reverse("run-act", args=[dead.code, "replay"]), {"on": "original"})
    assert on_first.status_code == 302
    replayed = Run.objects.get(replay_of=dead)
    assert replayed.deployment == deployment and on_first["Location"].endswith(f"{replayed.code}/")
