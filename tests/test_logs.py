"""Log pages, the poll API, Vercel drains and retention, without the runtime."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from telemetry.models import Invocation, LogEntry
from telemetry.tasks import prune_old_logs
from workers.models import Worker

from .conftest import client_for
from .helpers import GREETER, create_deployment


def add_lines(
    deployment, count, request_id="req_a", function="hello", level="log", start=0, text="line"
):
    now = timezone.now()
    return LogEntry.objects.bulk_create(
        [
            LogEntry(
                tenant=deployment.tenant, deployment=deployment, request_id=request_id,
                seq=start + i, function=function, level=level, timestamp=now,
                message=f"{text} {start + i}",
            )
            for i in range(count)
        ]
    )  # fmt: skip


def messages(html: str, prefix="line") -> list[str]:
    import re

    return re.findall(rf"<pre>({prefix} \d+)</pre>", html)


def log_urls(worker, deployment, request_id="req_a"):
    return [
        reverse("worker-logs", args=[worker.code]),
        reverse("worker-logs-tail", args=[worker.code]),
        reverse("worker-logs-older", args=[worker.code]) + "?before=999999",
        reverse("deployment-logs", args=[deployment.code]),
        reverse("deployment-logs-tail", args=[deployment.code]),
        reverse("deployment-logs-older", args=[deployment.code]),
        reverse("invocation", args=[request_id]),
        reverse("api:logs-poll", args=[worker.code]),
    ]


def test_outsider_gets_404_on_every_log_page_partial_and_endpoint(worker, deployment, outsider):
    add_lines(deployment, 3)
    client = client_for(Client, outsider)
    for url in log_urls(worker, deployment):
        response = client.get(url, HTTP_HX_REQUEST="true")
        assert response.status_code == 404, url
        assert b"line 0" not in response.content


def test_anonymous_gets_login_or_401(worker, deployment):
    client = Client()
    for url in log_urls(worker, deployment)[:-1]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert client.get(reverse("api:logs-poll", args=[worker.code])).status_code == 401


def test_page_shows_newest_first_and_the_tail_follows_from_the_cursor(
    owner_client, worker, deployment
):
    add_lines(deployment, 3)
    page = owner_client.get(reverse("worker-logs", args=[worker.code])).content.decode()
    assert messages(page) == ["line 2", "line 1", "line 0"]
    newest = LogEntry.objects.order_by("-id").first().id
    assert f"cursor={newest}" in page and 'hx-trigger="every 500ms"' in page

    tail_url = reverse("worker-logs-tail", args=[worker.code])
    nothing = owner_client.get(f"{tail_url}?cursor={newest}").content.decode()
    assert messages(nothing) == [] and f"cursor={newest}" in nothing

    add_lines(deployment, 2, start=3)
    more = owner_client.get(f"{tail_url}?cursor={newest}").content.decode()
    assert messages(more) == ["line 4", "line 3"]  # newest on top, nothing repeated
    assert 'hx-swap-oob="afterbegin:#log-lines"' in more
    assert f"cursor={newest + 2}" in more


def test_pause_keeps_the_cursor_and_resume_shows_what_came_meanwhile(
    owner_client, worker, deployment
):
    first = add_lines(deployment, 1)[0]
    tail_url = reverse("worker-logs-tail", args=[worker.code])
    paused = owner_client.get(f"{tail_url}?cursor={first.id}&paused=1").content.decode()
    assert "Resume" in paused and "hx-trigger" not in paused.split("Resume")[0]
    add_lines(deployment, 2, start=1)
    resumed = owner_client.get(f"{tail_url}?cursor={first.id}").content.decode()
    assert messages(resumed) == ["line 2", "line 1"]


def test_filters_by_level_function_request_and_text(owner_client, worker, deployment):
    add_lines(deployment, 2, request_id="req_aaa", function="hello", level="log", text="hi")
    add_lines(deployment, 2, request_id="req_bbb", function="add", level="error", text="oops")
    url = reverse("worker-logs", args=[worker.code])
    assert messages(owner_client.get(url, {"level": "error"}).content.decode(), "oops") == [
        "oops 1",
        "oops 0",
    ]
    assert messages(owner_client.get(url, {"level": "error"}).content.decode(), "hi") == []
    assert messages(owner_client.get(url, {"function": "hello"}).content.decode(), "hi") == [
        "hi 1",
        "hi 0",
    ]
    assert messages(owner_client.get(url, {"request": "req_bb"}).content.decode(), "oops") == [
        "oops 1",
        "oops 0",
    ]
    assert messages(owner_client.get(url, {"q": "OOPS 1"}).content.decode(), "oops") == ["oops 1"]
    # A whole id (looked up by its index) finds its call's lines; a prefix finds all it starts.
    whole, sibling = "req_01a24e96228a" + "6" * 20, "req_01a24e96228a" + "7" * 20
    add_lines(deployment, 1, request_id=whole, text="first")
    add_lines(deployment, 1, request_id=sibling, text="second")
    assert messages(owner_client.get(url, {"request": whole}).content.decode(), "first") == [
        "first 0"
    ]
    assert messages(owner_client.get(url, {"request": whole}).content.decode(), "second") == []
    by_prefix = owner_client.get(url, {"request": whole[:16]}).content.decode()
    assert messages(by_prefix, "first") == ["first 0"]
    assert messages(by_prefix, "second") == ["second 0"]


def test_tail_moves_the_cursor_over_lines_the_filter_hides(owner_client, worker, deployment):
    start = add_lines(deployment, 1, text="hi")[0].id
    add_lines(deployment, 3, level="error", start=1, text="oops")
    tail_url = reverse("worker-logs-tail", args=[worker.code])
    body = owner_client.get(f"{tail_url}?cursor={start}&level=log").content.decode()
    assert messages(body, "oops") == []
    assert f"cursor={start + 3}" in body  # the hidden lines are passed, not re-read forever


def test_load_older_lines(owner_client, worker, deployment, settings):
    settings.LOG_PAGE_SIZE = 2
    add_lines(deployment, 5)
    page = owner_client.get(reverse("worker-logs", args=[worker.code])).content.decode()
    assert messages(page) == ["line 4", "line 3"]
    oldest_shown = LogEntry.objects.get(message="line 3").id
    older = owner_client.get(
        reverse("worker-logs-older", args=[worker.code]), {"before": oldest_shown}
    ).content.decode()
    assert messages(older) == ["line 2", "line 1"]
    assert "Load older lines" in older


def test_each_line_links_to_its_invocation(owner_client, worker, deployment):
    add_lines(deployment, 2, request_id="req_linked")
    Invocation.objects.create(
        request_id="req_linked", deployment=deployment, tenant=deployment.tenant, function="hello",
        status="ok", duration_ms=3.5, started_at=timezone.now(),
    )  # fmt: skip
    page = owner_client.get(reverse("worker-logs", args=[worker.code])).content.decode()
    assert reverse("invocation", args=["req_linked"]) in page
    detail = owner_client.get(reverse("invocation", args=["req_linked"])).content.decode()
    assert "hello" in detail and "3.5 ms" in detail and messages(detail) == ["line 0", "line 1"]


def test_poll_api_answers_at_once_with_lines_after_the_cursor(owner_client, worker, deployment):
    add_lines(deployment, 3)
    url = reverse("api:logs-poll", args=[worker.code])
    first = owner_client.get(url).json()
    assert [line["message"] for line in first["lines"]] == ["line 0", "line 1", "line 2"]
    assert first["lines"][0]["requestId"] == "req_a" and first["lines"][0]["deploymentId"] == str(
        deployment.code
    )
    cursor = first["cursor"]
    timings = []
    for _ in range(5):  # nothing new: it must answer at once, never wait for lines
        started = time.monotonic()
        body = owner_client.get(url, {"cursor": cursor}).json()
        timings.append(time.monotonic() - started)
        assert body == {"lines": [], "cursor": cursor}
    assert sorted(timings)[2] < 0.1
    add_lines(deployment, 1, start=3)
    body = owner_client.get(url, {"cursor": cursor}).json()
    assert [line["message"] for line in body["lines"]] == ["line 3"] and body["cursor"] > cursor


# --- Vercel log drains ------------------------------------------------------------------


@pytest.fixture
def drain_settings(settings):
    settings.VERCEL_LOG_DRAIN_SECRET = "drain-secret"
    settings.VERCEL_LOG_DRAIN_VERIFY = "verify-code"
    return settings


def drain_line(deployment_id, n, **extra):
    return {
        "id": f"line-{n}", "deploymentId": deployment_id, "source": "lambda", "host": "x.vercel.app",
        "timestamp": 1764370000000 + n, "projectId": "prj_1", "level": "info",
        "message": f"drained {n}", "requestId": "vreq_1", **extra,
    }  # fmt: skip


def signed(body: bytes, secret="drain-secret") -> dict:
    return {"HTTP_X_VERCEL_SIGNATURE": hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def vercel_deployment(worker):
    deployment = create_deployment(worker, GREETER)
    deployment.backend_id = "dpl_abc123"
    deployment.save()
    return deployment


def test_drain_with_a_bad_signature_is_403_and_stores_nothing(client, worker, drain_settings):
    vercel_deployment(worker)
    body = json.dumps([drain_line("dpl_abc123", 1)]).encode()
    for headers in [{}, signed(body, "wrong-secret"), {"HTTP_X_VERCEL_SIGNATURE": "00" * 20}]:
        response = client.post(
            reverse("api:vercel-drain"), body, content_type="application/json", **headers
        )
        assert response.status_code == 403
    assert not LogEntry.objects.exists()


def test_drain_accepts_json_and_ndjson_once_each(client, worker, drain_settings):
    deployment = vercel_deployment(worker)
    as_array = json.dumps([drain_line("dpl_abc123", 1), drain_line("dpl_other", 2)]).encode()
    as_ndjson = "\n".join(
        json.dumps(drain_line("dpl_abc123", n, level="error")) for n in (3, 4)
    ).encode()
    for body in (as_array, as_ndjson, as_array):  # the repeated delivery adds nothing
        response = client.post(
            reverse("api:vercel-drain"), body, content_type="application/x-ndjson", **signed(body)
        )
        assert response.status_code == 200
        assert response["x-vercel-verify"] == "verify-code"
    lines = LogEntry.objects.order_by("id")
    assert [(line.message, line.level) for line in lines] == [
        ("drained 1", "info"),
        ("drained 3", "error"),
        ("drained 4", "error"),
    ]
    assert {line.deployment_id for line in lines} == {deployment.id}


def test_drain_verification_handshake(client, drain_settings):
    response = client.get(reverse("api:vercel-drain"))
    assert response.status_code == 200 and response["x-vercel-verify"] == "verify-code"


# --- retention ---------------------------------------------------------------------------


def test_retention_deletes_old_lines_per_tenant_and_keeps_the_rest(
    worker, deployment, other_tenant, settings
):
    settings.LOG_RETENTION_DAYS = 7
    worker.tenant.log_retention_days = 1
    worker.tenant.save()
    other_worker = Worker.objects.create(tenant=other_tenant, name="other")
    other = create_deployment(other_worker, GREETER)
    add_lines(deployment, 3, request_id="req_old")
    add_lines(deployment, 2, request_id="req_new", text="fresh")
    add_lines(other, 2, request_id="req_other")
    two_days_ago = timezone.now() - timedelta(days=2)
    LogEntry.objects.filter(request_id__in=["req_old", "req_other"]).update(timestamp=two_days_ago)

    assert prune_old_logs() == 3
    assert set(LogEntry.objects.values_list("request_id", flat=True)) == {"req_new", "req_other"}
