"""Live logs with real parts: lines pushed while a function runs, the browser tail, SSE."""

import json
import os
import threading

import httpx
import pytest
import redis
from django.conf import settings
from django.utils import timezone

from telemetry.models import LogEntry
from workers.models import Worker

from .conftest import portal_session, start_runtime, wait_for
from .helpers import build_now, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SLOW = program("live_logs/slow")


@pytest.fixture
def slow_worker(runtime, tenant, settings):
    settings.RUNTIME_TIMEOUT_SECONDS = 15  # the function sleeps 5 s
    worker = Worker.objects.create(tenant=tenant, name="slow", public=True)
    deployment = build_now(worker, SLOW)
    assert deployment.status == "ready", deployment.error_message
    return worker, deployment


def call_in_background(deployment, fn="slow"):
    answer = {}

    def call():
        answer["response"] = httpx.post(
            f"{deployment.path_url}/api/invoke/{fn}", json={}, timeout=30
        )

    thread = threading.Thread(target=call)
    thread.start()
    return thread, answer


def test_lines_are_stored_while_the_function_still_runs(slow_worker):
    worker, deployment = slow_worker
    thread, answer = call_in_background(deployment)
    wait_for(lambda: LogEntry.objects.filter(message="first line").exists(), 4.5, "the first line")
    assert thread.is_alive(), "the first line must arrive before the function returns"
    assert not LogEntry.objects.filter(message="second line").exists()
    thread.join(10)
    body = answer["response"].json()
    assert [line["message"] for line in body["logs"]] == ["first line", "second line"]
    wait_for(lambda: LogEntry.objects.filter(message="second line").exists(), 5, "the second line")
    first = LogEntry.objects.get(message="first line")
    assert first.function == "slow" and first.request_id == body["requestId"] and first.seq == 0


def test_line_count_and_size_caps_leave_a_visible_marker(slow_worker, settings):
    worker, deployment = slow_worker
    response = httpx.post(
        f"{deployment.path_url}/api/invoke/chatty", json={"lines": 1500}, timeout=30
    )
    logs = response.json()["logs"]
    limit = settings.RUNTIME_MAX_LOG_LINES
    assert len(logs) == limit + 1
    assert logs[-2]["message"] == f"line {limit - 1}"
    assert (
        logs[-1]["message"]
        == f"truncated: 501 lines dropped (the limit is {limit} lines per invocation)"
    )
    small = httpx.post(
        f"{deployment.path_url}/api/invoke/chatty", json={"lines": 1}, timeout=30
    ).json()["logs"]
    long_line = small[-1]["message"]
    assert long_line.startswith("x" * 100) and len(long_line.encode()) < 10000
    assert long_line.endswith(
        f"[truncated: the line was 10000 bytes, the limit is {settings.RUNTIME_MAX_LINE_BYTES}]"
    )


def test_a_flood_of_long_lines_arrives_whole_and_in_order(slow_worker, settings):
    worker, deployment = slow_worker
    count = settings.RUNTIME_MAX_LOG_LINES  # 1000 lines of about 6 KB: megabytes in one call
    response = httpx.post(
        f"{deployment.path_url}/api/invoke/flood", json={"lines": count}, timeout=30
    )
    assert response.status_code == 200, response.text
    logs = response.json()["logs"]
    assert [line["message"] for line in logs] == [f"{i} " + "é€😀" * 700 for i in range(count)]
    assert [line["seq"] for line in logs] == list(range(count))
    request_id = response.json()["requestId"]
    stored = wait_for(
        lambda: LogEntry.objects.filter(request_id=request_id).count() == count or None,
        20,
        "every line stored",
    )
    assert stored
    first, last = LogEntry.objects.filter(request_id=request_id).order_by("id")[:: count - 1]
    assert (first.seq, last.seq) == (0, count - 1)
    assert last.message == f"{count - 1} " + "é€😀" * 700


def test_browser_tail_shows_the_first_line_before_the_function_returns(
    live_server, slow_worker, owner
):
    from playwright.sync_api import sync_playwright

    worker, deployment = slow_worker
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("BROWSER_PATH", "/usr/bin/chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/login/?next=/workers/{worker.code}/logs/")
            page.fill("input[name=login]", owner.username)
            page.fill("input[name=password]", "pw-123456")
            page.click("main button[type=submit]")
            page.wait_for_selector("#log-poller .live")
            thread, answer = call_in_background(deployment)
            page.wait_for_selector("#log-lines .log-line:has-text('first line')", timeout=4500)
            assert thread.is_alive(), "the line must show while the function still runs"
            assert page.locator("#log-lines .log-line:has-text('second line')").count() == 0
            page.wait_for_selector("#log-lines .log-line:has-text('second line')", timeout=10000)
            thread.join(10)
            # Newest first, and every line exactly once.
            texts = page.locator("#log-lines .log-line pre").all_inner_texts()
            assert texts == ["second line", "first line"]
        finally:
            browser.close()


def read_events(lines, count):
    """The next `count` events with data from an iterator over the stream's lines."""
    events, current = [], {}
    for line in lines:
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            current[field] = value.lstrip(" ")
    return events


def add_lines(deployment, start, count):
    LogEntry.objects.bulk_create(
        [
            LogEntry(
                tenant=deployment.tenant, deployment=deployment, request_id="req_sse", seq=i,
                function="slow", level="log", timestamp=timezone.now(), message=f"sse {i}",
            )
            for i in range(start, start + count)
        ]
    )  # fmt: skip


def test_sse_stream_resumes_with_last_event_id_losing_nothing(asgi_server, tenant, owner):
    worker = Worker.objects.create(tenant=tenant, name="streamed")
    deployment = build_now(worker, SLOW)
    add_lines(deployment, 0, 3)
    client = portal_session(asgi_server, owner.username)
    url = f"/api/workers/{worker.code}/logs"
    with client.stream("GET", url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = read_events(response.iter_lines(), 3)
    assert [json.loads(e["data"])["message"] for e in events] == ["sse 0", "sse 1", "sse 2"]
    last_id = events[-1]["id"]

    add_lines(deployment, 3, 4)  # written while no one is connected
    with client.stream("GET", url, headers={"Last-Event-ID": last_id}, timeout=30) as response:
        lines = response.iter_lines()
        resumed = read_events(lines, 4)
        add_lines(deployment, 7, 1)  # and one while connected: pushed live
        live = read_events(lines, 1)
    messages = [json.loads(e["data"])["message"] for e in resumed + live]
    assert messages == ["sse 3", "sse 4", "sse 5", "sse 6", "sse 7"]

    # The client went away: the server ends the stream and drops its subscription.
    redis_client = redis.Redis.from_url(settings.REDIS_URL)
    channel = f"logs:worker:{worker.pk}"
    wait_for(lambda: redis_client.pubsub_numsub(channel)[0][1] == 0, 10, "the stream to end")


def test_sse_and_poll_endpoints_are_404_for_outsiders(asgi_server, tenant, outsider):
    worker = Worker.objects.create(tenant=tenant, name="private")
    client = portal_session(asgi_server, outsider.username)
    assert client.get(f"/api/workers/{worker.code}/logs").status_code == 404
    assert client.get(f"/api/workers/{worker.code}/logs/poll").status_code == 404
    assert httpx.get(f"{asgi_server}/api/workers/{worker.code}/logs").status_code == 401


class FlakyControlPlane:
    """A proxy in front of the live server whose ingest can be switched off, to play a
    control plane that is briefly down."""

    def __init__(self, target: str):
        import http.server

        proxy = self
        self.ingest_down = False
        self.refused = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self):
                if proxy.ingest_down and self.path.startswith("/internal/runtime/ingest"):
                    proxy.refused += 1
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"host", "content-length"}
                }
                upstream = httpx.request(
                    self.command, target + self.path, content=body, headers=headers, timeout=30
                )
                self.send_response(upstream.status_code)
                for key in ("content-type",):
                    if key in upstream.headers:
                        self.send_header(key, upstream.headers[key])
                self.send_header("content-length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            do_GET = do_POST = forward

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_lines_survive_a_control_plane_that_is_briefly_down(live_server, tenant):
    proxy = FlakyControlPlane(live_server.url)
    host, runtime_url = start_runtime(CONTROL_PLANE_URL=proxy.url)
    try:
        worker = Worker.objects.create(tenant=tenant, name="resilient", public=True)
        deployment = build_now(worker, SLOW)
        proxy.ingest_down = True
        url = f"{runtime_url}/d/{deployment.host}/api/invoke/chatty"
        body = httpx.post(url, json={"lines": 50}, timeout=30).json()
        wait_for(lambda: proxy.refused >= 2, 10, "ingest to be refused and retried")
        assert not LogEntry.objects.filter(request_id=body["requestId"]).exists()

        proxy.ingest_down = False  # back up: the buffered lines arrive, each once
        wait_for(
            lambda: LogEntry.objects.filter(request_id=body["requestId"]).count() == 51,
            15,
            "the buffered lines",
        )
        stored = list(
            LogEntry.objects.filter(request_id=body["requestId"])
            .order_by("seq")
            .values_list("seq", flat=True)
        )
        assert stored == list(range(51))
    finally:
        host.stop()
        proxy.close()
