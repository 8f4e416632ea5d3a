"""Runtime lifecycle: idle isolates are stopped, the pool is bounded, and several host
processes share one port."""

import time

import httpx
import pytest

from telemetry.models import Invocation, LogEntry
from workers.models import Worker

from .conftest import start_runtime, wait_for
from .helpers import GREETER, build_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def health(url):
    return httpx.get(f"{url}/healthz", timeout=2).json()


def invoke(url, deployment):
    return httpx.post(f"{url}/d/{deployment.host}/api/invoke/hello", json={"name": "x"}, timeout=30)


@pytest.fixture
def two_deployments(live_server, tenant):
    first = build_now(Worker.objects.create(tenant=tenant, name="one", public=True), GREETER)
    second = build_now(Worker.objects.create(tenant=tenant, name="two", public=True), GREETER)
    return first, second


def test_idle_isolates_are_stopped_and_start_again_on_the_next_call(two_deployments):
    first, _ = two_deployments
    host, url = start_runtime(RUNTIME_PROCESSES="1", RUNTIME_IDLE_SECONDS="1")
    try:
        assert invoke(url, first).status_code == 200
        assert health(url)["isolates"] == 1
        wait_for(lambda: health(url)["isolates"] == 0, 10, "the idle isolate to be stopped", 0.2)
        assert invoke(url, first).json()["result"] == {"greeting": "Hello, x!"}
    finally:
        host.stop()


def test_the_pool_is_bounded_and_evicts_the_least_recently_used(two_deployments):
    first, second = two_deployments
    host, url = start_runtime(RUNTIME_PROCESSES="1", RUNTIME_MAX_ISOLATES="1")
    try:
        for deployment in (first, second, first):
            assert invoke(url, deployment).status_code == 200
            assert health(url)["isolates"] == 1
    finally:
        host.stop()


def test_a_host_over_its_memory_budget_stops_least_recently_used_isolates(two_deployments):
    first, second = two_deployments
    roomy, roomy_url = start_runtime(RUNTIME_PROCESSES="1")
    tight, tight_url = start_runtime(RUNTIME_PROCESSES="1", RUNTIME_MEMORY_BUDGET_MB="1")
    try:
        for deployment in (first, second):
            assert invoke(roomy_url, deployment).status_code == 200
            assert invoke(tight_url, deployment).status_code == 200
        assert health(roomy_url)["isolates"] == 2
        # Far over a 1 MB budget: each cold start first stops the idle isolates.
        assert health(tight_url)["isolates"] == 1
        assert invoke(tight_url, first).json()["result"] == {"greeting": "Hello, x!"}
    finally:
        roomy.stop()
        tight.stop()


def test_host_processes_share_the_port_and_a_dead_one_is_restarted(two_deployments):
    import os
    import signal

    first, _ = two_deployments
    host, url = start_runtime(RUNTIME_PROCESSES="2")
    try:
        pids = set()
        # New connections are spread over the processes by the kernel.
        wait_for(
            lambda: pids.add(health(url)["pid"]) or len(pids) == 2, 20, "both host processes", 0.05
        )
        assert invoke(url, first).status_code == 200
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)

        # The supervisor starts a new one; the survivor keeps answering meanwhile. (A
        # connection the kernel had already queued on the killed process's socket is reset:
        # that one is sent again, as a client would.)
        def answered() -> bool:
            try:
                return invoke(url, first).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answered, 10, "calls to keep working", 0.1)
        fresh = set()
        wait_for(
            lambda: fresh.add(health(url)["pid"]) or (len(fresh) == 2 and victim not in fresh),
            30,
            "a replacement host",
            0.05,
        )
    finally:
        host.stop()


def test_a_new_deployment_is_announced_and_fetched_before_its_first_call(
    asgi_server, tenant, settings
):
    """Hosts follow the control plane's announcements (a stream, under ASGI): a deployment
    that becomes ready has its code on the host before anyone calls it, and, when its
    tenant's sandbox runs there already, an isolate loaded with it before it is marked
    ready: its first call, made the moment the build says ready, waits for no load (it is not
    recorded as a cold start)."""
    host, url = start_runtime(RUNTIME_PROCESSES="1", CONTROL_PLANE_URL=asgi_server)
    try:
        wait_for(lambda: health(url)["cachedCode"] == 0, 10, "the runtime")
        time.sleep(1)  # its announcement stream is open
        worker = Worker.objects.create(tenant=tenant, name="new", public=True)
        deployment = build_now(worker, GREETER)
        wait_for(lambda: health(url)["cachedCode"] == 1, 10, "the code fetched ahead")
        # The tenant has no sandbox here yet: none is started for a deployment nobody called.
        assert health(url)["isolates"] == 0 and health(url)["sandboxes"] == 0
        first = invoke(url, deployment).json()
        assert first["result"] == {"greeting": "Hello, x!"}

        # Its module says when it is loaded: before the deployment was marked ready. (The
        # build waits for that longer than it would in production, so a loaded machine
        # booting the isolate slowly cannot make it give up.)
        settings.RUNTIME_PRELOAD_WAIT_SECONDS = 30
        says_loaded = 'console.log("module loaded");\n' + GREETER
        newer = build_now(worker, says_loaded.replace("Hello", "Hi"))
        second = invoke(url, newer).json()
        assert second["result"] == {"greeting": "Hi, x!"}
        wait_for(lambda: Invocation.objects.filter(
            request_id__in=[first["requestId"], second["requestId"]]).count() == 2, 10, "both")  # fmt: skip
        cold = dict(Invocation.objects.values_list("request_id", "cold"))
        assert cold == {first["requestId"]: True, second["requestId"]: False}
        loaded = wait_for(
            lambda: LogEntry.objects.filter(deployment=newer, message="module loaded").first(),
            10,
            "the line its module printed",
        )
        assert loaded.timestamp < newer.finished_at
    finally:
        host.stop()
