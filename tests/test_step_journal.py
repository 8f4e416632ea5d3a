"""The journal of durable steps at the control plane: what a run's code may record and how,
events taken by one wait only, the internal endpoint's scoping, replay from a chosen step and
cancel."""

import json
import time

import pytest
from django.test import Client

from runs import steps
from runs.models import Run, RunEvent, Step
from tenancy.models import AuditEvent
from workers.api_keys import issue_key
from workers.models import Worker

from .helpers import GREETER, create_deployment

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(worker):
    d = create_deployment(worker, GREETER)
    d.status, d.functions = "ready", ["hello"]
    d.save()
    return d


def a_run(deployment, status="running") -> Run:
    return Run.objects.create(tenant=deployment.tenant, worker=deployment.worker,
                              deployment=deployment, function="hello", status=status)  # fmt: skip


def later(seconds: float) -> int:
    return int((time.time() + seconds) * 1000)


def test_a_step_finishes_once_and_its_results_are_bounded(ready, monkeypatch):
    run = a_run(ready)
    assert steps.perform(run, {"op": "done", "name": "a", "result": "1"}) == {
        "done": True,
        "result": "1",
    }
    # Another attempt that ran it too: the first result recorded stands.
    assert steps.perform(run, {"op": "done", "name": "a", "result": "2"})["result"] == "1"
    assert steps.perform(run, {"op": "journal"})["steps"]["a"]["result"] == "1"
    with pytest.raises(steps.StepError, match="at most 262144 bytes"):
        steps.perform(run, {"op": "done", "name": "big", "result": json.dumps("x" * 300_000)})
    monkeypatch.setattr(steps, "MAX_STEPS", 2)
    steps.perform(run, {"op": "failed", "name": "b", "error": "boom"})
    with pytest.raises(steps.StepError, match="at most 2 steps"):
        steps.perform(run, {"op": "done", "name": "c", "result": "1"})
    assert Step.objects.get(run=run, name="b").error_message == "boom"
    with pytest.raises(steps.StepError, match="at most 365 days"):
        steps.perform(run, {"op": "sleep", "name": "b", "until": later(400 * 86400)})


def test_a_step_keeps_when_its_try_began_and_its_own_lines(ready):
    from runs.models import RunAttempt

    run = a_run(ready)
    began = later(-2)
    steps.perform(run, {"op": "done", "name": "a", "result": "1", "started": began,
                        "lines": [1, 3, "x", True]}, request_id="req_1")  # fmt: skip
    # A start in the future or days ago is not believed: the time it was recorded stands.
    steps.perform(run, {"op": "failed", "name": "b", "error": "no", "started": later(3600),
                        "lines": list(range(5000))}, request_id="req_1")  # fmt: skip
    a, b = Step.objects.get(run=run, name="a"), Step.objects.get(run=run, name="b")
    assert abs(a.started_at.timestamp() * 1000 - began) < 1 and a.finished_at > a.started_at
    assert a.lines == [1, 3] and len(b.lines) == steps.MAX_LINES
    assert b.finished_at >= b.started_at > a.started_at
    logs = [{"seq": n, "level": "log", "message": f"line {n}"} for n in range(5)]
    RunAttempt.objects.create(run=run, number=1, deployment=ready, request_id="req_1", logs=logs)
    shown = steps.with_lines([a, b], run.attempt_set.all())
    assert [line["message"] for line in shown[0].printed] == ["line 1", "line 3"]
    assert len(shown[1].printed) == 5


def test_a_wait_takes_a_fitting_event_once_even_one_sent_before_it(ready):
    run = a_run(ready)
    steps.send_event(run, "approved", '{"order": 2}', "test")  # before the wait, another order
    steps.send_event(run, "approved", '{"order": 1}', "test")
    wait = {
        "op": "wait",
        "name": "ok",
        "event": "approved",
        "until": later(60),
        "match": {"order": 1},
    }
    assert steps.perform(run, wait) == {"done": True, "result": '{"order": 1}'}
    other = dict(wait, name="again")
    assert "parked" in steps.perform(run, other)  # the order-1 event went to the first wait
    assert RunEvent.objects.get(payload='{"order": 1}').taken_by == "ok"
    # Past its timeout, a wait answers null.
    late = {"op": "wait", "name": "late", "event": "never", "until": later(-1)}
    assert steps.perform(run, late) == {"done": True, "result": "null"}


def test_the_internal_endpoint_serves_only_running_runs_of_the_deployment(
    ready, settings, other_tenant
):
    host = Client(HTTP_AUTHORIZATION=f"Bearer {settings.RUNTIME_TOKEN}")
    url = f"/internal/runtime/deployments/{ready.code}/steps"

    def ask(run, body):
        return host.post(
            url, json.dumps({"run": str(run.code), **body}), content_type="application/json"
        )

    running = a_run(ready)
    assert ask(running, {"op": "done", "name": "a", "result": "1"}).status_code == 200
    parked = a_run(ready, "sleeping")
    assert ask(parked, {"op": "journal"}).status_code == 409
    other_worker = Worker.objects.create(tenant=other_tenant, name="theirs")
    theirs = create_deployment(other_worker, GREETER)
    elsewhere = a_run(theirs)
    assert ask(elsewhere, {"op": "journal"}).status_code == 404  # not this deployment's run
    assert (
        host.post(url, json.dumps({"run": "nope"}), content_type="application/json").status_code
        == 404
    )


def test_replay_from_a_chosen_step_and_cancel(ready, tenant):
    api = Client(HTTP_AUTHORIZATION=f"Bearer {issue_key(tenant, 'ops', ['invoke', 'read'])[1]}")
    dead = a_run(ready, "dead")
    for name, status in (("charge", "done"), ("label", "done"), ("mail", "failed")):
        Step.objects.create(
            run=dead, name=name, status=status, result='"r"' if status == "done" else ""
        )
    replayed = api.post(f"/api/runs/{dead.code}/replay", {"onProduction": False, "fromStep": "label"},
                        content_type="application/json")  # fmt: skip
    assert replayed.status_code == 202, replayed.content
    new = Run.objects.get(code=replayed.json()["id"])
    assert [(s.name, s.result) for s in new.steps.all()] == [("charge", '"r"')]
    again = a_run(ready, "dead")
    missing = api.post(f"/api/runs/{again.code}/replay", {"onProduction": False, "fromStep": "nope"},
                       content_type="application/json")  # fmt: skip
    assert (
        missing.status_code == 409 and 'no step named "nope"' in missing.json()["error"]["message"]
    )

    waiting = a_run(ready, "waiting")
    canceled = api.post(f"/api/runs/{waiting.code}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "failed"
    assert canceled.json()["error"]["code"] == "canceled"
    assert AuditEvent.objects.filter(action="run.cancel").exists()
    busy = a_run(ready, "running")
    assert api.post(f"/api/runs/{busy.code}/cancel").status_code == 409
    assert Run.objects.get(pk=busy.pk).status == "running"
