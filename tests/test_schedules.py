"""Schedules (cron in a time zone, the rule after an outage, pause and resume), the retry
policy, and the run pages: who sees them, what they show."""

import json
from datetime import UTC, datetime, timedelta

from django.test import Client
from django.urls import reverse

from runs.models import Run, Schedule
from runs.schedules import arm, fire_due, next_firings
from tenancy.models import AuditEvent, Tenant
from workers.api_keys import issue_key

from .conftest import client_for
from .helpers import ready_in_production

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


ready = ready_in_production


def schedule(worker, cron="* * * * *", zone="UTC", **fields) -> Schedule:
    return Schedule.objects.create(
        tenant=worker.tenant, worker=worker, function="hello", cron=cron, time_zone=zone,
        payload='{"name": "cron"}', **fields,
    )  # fmt: skip


def test_a_due_schedule_starts_a_run_with_its_payload(worker):
    serving = ready(worker)
    s = schedule(worker, next_fire_at=T0)
    assert fire_due(now=T0 + timedelta(seconds=1)) == 1
    run = Run.objects.get()
    assert (run.trigger, run.schedule, run.deployment, run.function) == (
        "cron",
        s,
        serving,
        "hello",
    )
    assert json.loads(run.payload) == {"name": "cron"}
    s.refresh_from_db()
    assert s.next_fire_at == T0 + timedelta(minutes=1) and s.last_fired_at is not None
    assert fire_due(now=T0 + timedelta(seconds=2)) == 0  # not due again within its minute


def test_after_an_outage_a_schedule_fires_once_and_counts_what_it_missed(worker):
    ready(worker)
    s = schedule(worker, next_fire_at=T0)
    # Down from 10:00 to 10:05:10: the 10:00 firing runs now, 10:01 to 10:05 are missed.
    assert fire_due(now=T0 + timedelta(minutes=5, seconds=10)) == 1
    s.refresh_from_db()
    assert s.missed == 5 and s.next_fire_at == T0 + timedelta(minutes=6)
    assert Run.objects.count() == 1


def test_paused_and_suspended_schedules_do_not_fire_nor_catch_up(worker, tenant):
    ready(worker)
    paused = schedule(worker, next_fire_at=T0, paused=True)
    assert fire_due(now=T0 + timedelta(minutes=3)) == 0
    paused.paused = False
    arm(paused)  # resumed: its next firing is after now, none of the paused ones
    assert paused.next_fire_at > datetime.now(UTC)
    active = schedule(worker, next_fire_at=T0)
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended")
    assert fire_due(now=T0 + timedelta(minutes=2, seconds=1)) == 0
    active.refresh_from_db()
    assert active.next_fire_at == T0 + timedelta(minutes=3)  # moved on, nothing ran
    assert not Run.objects.exists()


def test_cron_times_follow_the_time_zone(worker):
    nine_in_paris = schedule(worker, cron="0 9 * * *", zone="Europe/Paris")
    [first] = next_firings(nine_in_paris, after=T0)
    assert first == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # CET is UTC+1 in winter
    summer = next_firings(nine_in_paris, after=datetime(2026, 7, 1, tzinfo=UTC))[0]
    assert summer.hour == 7  # CEST, UTC+2


def test_schedules_in_the_api(worker, tenant, client):
    ready(worker)
    key = issue_key(tenant, "ci", ["deploy", "read"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    url = f"/api/workers/{worker.code}/schedules"
    body = {
        "function": "hello",
        "cron": "*/15 * * * *",
        "timeZone": "Asia/Tokyo",
        "payload": {"a": 1},
    }
    made = client.post(url, json.dumps(body), "application/json", **auth)
    assert made.status_code == 201, made.content
    out = made.json()
    assert out["payload"] == {"a": 1} and len(out["nextFirings"]) == 3
    bad = client.post(url, json.dumps({**body, "cron": "99 * * * *"}), "application/json", **auth)
    assert bad.status_code == 409 and "cron expression" in bad.json()["error"]["message"]
    one = f"/api/schedules/{out['id']}"
    paused = client.patch(one, json.dumps({"paused": True}), "application/json", **auth).json()
    assert paused["paused"] is True and paused["nextFirings"] == []
    assert client.get(url, **auth).json()["schedules"][0]["cron"] == "*/15 * * * *"
    assert client.delete(one, **auth).status_code == 204
    assert not Schedule.objects.exists()
    assert {"schedule.create", "schedule.change", "schedule.delete"} <= set(
        AuditEvent.objects.values_list("action", flat=True)
    )


def test_the_retry_policy_is_set_in_the_api_and_the_portal(worker, tenant, owner_client, client):
    key = issue_key(tenant, "ci", ["deploy", "read"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    url = f"/api/workers/{worker.code}/retry-policy"
    assert client.get(url, **auth).json()["attempts"] == 3  # the platform's default
    policy = {"attempts": 5, "backoffSeconds": 2, "maxDelaySeconds": 60, "retryOn": ["timeout"]}
    assert client.put(url, json.dumps(policy), "application/json", **auth).json() == {
        **policy, "backoffSeconds": 2.0, "maxDelaySeconds": 60.0}  # fmt: skip
    wrong = {**policy, "retryOn": ["everything"]}
    assert client.put(url, json.dumps(wrong), "application/json", **auth).status_code == 400
    owner_client.post(
        reverse("worker-retry-policy", args=[worker.code]),
        {"attempts": "2", "backoff_seconds": "1", "max_delay_seconds": "10", "retry_on": ["error"]},
    )
    worker.refresh_from_db()
    assert (worker.retry_attempts, worker.retry_on) == (2, ["error"])


def test_the_runs_tab_polls_while_runs_are_in_flight_and_shows_attempts(owner_client, worker):
    serving = ready(worker)
    run = Run.objects.create(
        tenant=worker.tenant, worker=worker, deployment=serving, function="hello"
    )
    page = owner_client.get(reverse("worker-runs", args=[worker.code])).content.decode()
    assert "badge-queued" in page and 'hx-trigger="every 2s"' in page
    listing = reverse("worker-runs", args=[worker.code]) + "?part=list"
    assert owner_client.get(listing, HTTP_HX_REQUEST="true").status_code == 200
    Run.objects.filter(pk=run.pk).update(status="succeeded", result='{"ok": true}')
    assert owner_client.get(listing, HTTP_HX_REQUEST="true").status_code == 286  # stops
    detail = owner_client.get(reverse("run", args=[run.code])).content.decode()
    assert "Succeeded" in detail and "&quot;ok&quot;: true" in detail
    # Filters narrow the list.
    filtered = owner_client.get(reverse("worker-runs", args=[worker.code]) + "?status=dead")
    assert "No runs match these filters" in filtered.content.decode()
    # The schedule form on the tab creates one.
    owner_client.post(
        reverse("new-schedule", args=[worker.code]),
        {"function": "hello", "cron": "0 * * * *", "time_zone": "UTC", "payload": "{}"},
    )
    assert Schedule.objects.get().cron == "0 * * * *"
    refused = owner_client.post(
        reverse("new-schedule", args=[worker.code]),
        {"function": "hello", "cron": "every day", "time_zone": "Mars/Olympus", "payload": "{"},
    )
    assert refused.status_code == 400 and Schedule.objects.count() == 1


def test_run_and_schedule_pages_are_hidden_from_outsiders(worker, outsider, viewer):
    serving = ready(worker)
    run = Run.objects.create(
        tenant=worker.tenant, worker=worker, deployment=serving, function="hello", status="dead"
    )
    s = schedule(worker)
    urls = [
        ("get", reverse("worker-runs", args=[worker.code])),
        ("get", reverse("run", args=[run.code])),
        ("post", reverse("run-act", args=[run.code, "replay"])),
        ("post", reverse("run-act", args=[run.code, "discard"])),
        ("post", reverse("worker-replay-all", args=[worker.code])),
        ("post", reverse("worker-retry-policy", args=[worker.code])),
        ("post", reverse("new-schedule", args=[worker.code])),
        ("post", reverse("schedule-act", args=[s.code, "pause"])),
        ("post", reverse("schedule-act", args=[s.code, "delete"])),
    ]
    other = client_for(Client, outsider)
    for method, url in urls:
        assert getattr(other, method)(url).status_code == 404, url
    assert str(run.code)[:8] not in other.get(reverse("runs")).content.decode()
    reader = client_for(Client, viewer)
    for method, url in urls:
        if method == "post":
            assert reader.post(url).status_code == 403, url
    assert Schedule.objects.filter(pk=s.pk, paused=False).exists()
    assert Run.objects.get(pk=run.pk).discarded_at is None


def test_ended_runs_are_pruned_after_their_keep_days_but_dead_letters_wait(worker, settings):
    from django.utils import timezone

    from telemetry.tasks import prune_old_logs

    serving = ready(worker)
    old = timezone.now() - timedelta(days=settings.RUN_RESULT_KEEP_DAYS + 1)

    def run(status, **fields):
        return Run.objects.create(tenant=worker.tenant, worker=worker, deployment=serving,
                                  function="hello", status=status, finished_at=old, **fields)  # fmt: skip

    done, letter, discarded = run("succeeded"), run("dead"), run("dead", discarded_at=old)
    fresh = Run.objects.create(tenant=worker.tenant, worker=worker, deployment=serving,
                               function="hello", status="succeeded", finished_at=timezone.now())  # fmt: skip
    prune_old_logs()
    assert set(Run.objects.values_list("pk", flat=True)) == {letter.pk, fresh.pk}
    assert not Run.objects.filter(pk__in=[done.pk, discarded.pk]).exists()


# --- invocation history ----------------------------------------------------------------------


def test_invocation_history_filters_and_pages_in_the_portal_and_the_api(
    owner_client, worker, tenant, outsider, client
):
    from django.utils import timezone

    from telemetry.models import Invocation

    first = ready(worker)
    second = ready(worker)
    now = timezone.now()
    rows = [
        Invocation(
            request_id=f"req_{n:04d}", deployment=first if n < 60 else second, tenant=tenant,
            function="hello" if n % 2 else "fetch", status="ok" if n % 10 else "error",
            status_code=200 if n % 10 else 500, duration_ms=n, started_at=now - timedelta(minutes=120 - n),
        )
        for n in range(120)
    ]  # fmt: skip
    Invocation.objects.bulk_create(rows)
    page = owner_client.get(reverse("worker-invocations", args=[worker.code])).content.decode()
    assert "req_0119" in page and "req_0070" in page and "req_0069" not in page  # 50 a page
    older = owner_client.get(reverse("worker-invocations", args=[worker.code]) + "?" +
                             page.split('href="?')[1].split('"')[0].replace("&amp;", "&"))  # fmt: skip
    assert "req_0069" in older.content.decode() and "req_0119" not in older.content.decode()
    errors = owner_client.get(
        reverse("worker-invocations", args=[worker.code])
        + f"?status=error&deployment={second.short_id}"
    ).content.decode()
    assert errors.count("badge-error") == 6  # 60, 70, ... 110
    one = owner_client.get(reverse("deployment-invocations", args=[first.code])).content.decode()
    assert "req_0059" in one and "req_0060" not in one
    assert (
        client_for(Client, outsider)
        .get(reverse("worker-invocations", args=[worker.code]))
        .status_code
        == 404
    )
    assert (
        client_for(Client, outsider)
        .get(reverse("deployment-invocations", args=[first.code]))
        .status_code
        == 404
    )

    key = issue_key(tenant, "ci", ["read"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    since = int((now - timedelta(minutes=30)).timestamp())
    recent = client.get(
        f"/api/workers/{worker.code}/invocations?since={since}&function=hello", **auth
    ).json()
    assert [i["requestId"] for i in recent["invocations"]][:2] == ["req_0119", "req_0117"]
    assert all(i["function"] == "hello" for i in recent["invocations"]) and recent["next"] is None
    full = client.get(f"/api/deployments/{first.code}/invocations", **auth).json()
    assert len(full["invocations"]) == 60 and full["next"] is None
    assert (
        client.get(f"/api/workers/{worker.code}/invocations?since=soon", **auth).status_code == 400
    )
