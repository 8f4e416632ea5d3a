"""CPU time beside wall-clock time: a call that holds its isolate's thread past the
deployment's CPU limit stops with cpu_limit_exceeded, and the others in flight get a retryable
error with their lines; a call that only waits past its deadline ends alone."""

import concurrent.futures
import time

import httpx
import pytest
from django.conf import settings

from workers.models import Worker

from .helpers import build_now, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOURCE = program("cpu_limit/source")


@pytest.fixture
def busy(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="busy", public=True, cpu_ms=300)
    deployment = build_now(worker, SOURCE)
    assert deployment.status == "ready", deployment.error_message
    return deployment


def call(deployment, fn: str, body) -> httpx.Response:
    url = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/{fn}"
    return httpx.post(url, json=body, timeout=30)


def test_a_spin_stops_with_the_cpu_error_and_its_neighbour_is_told_to_retry(busy):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        napping = pool.submit(call, busy, "nap", {"ms": 1500, "tag": "neighbour"})
        time.sleep(0.3)  # the nap is in flight before the spin starts
        spun = call(busy, "spin", {})
        neighbour = napping.result()
    assert spun.status_code == 500
    error = spun.json()["error"]
    assert error["code"] == "cpu_limit_exceeded"
    assert error["message"].startswith("The function used more than its 300 ms of CPU time")
    assert [line["message"] for line in spun.json()["logs"]] == ["spinning"]
    assert neighbour.status_code == 503 and neighbour.json()["error"]["code"] == "isolate_restarted"
    assert [line["message"] for line in neighbour.json()["logs"]] == ["start neighbour"]
    assert call(busy, "echo", {"after": True}).json()["result"] == {"after": True}


def test_work_with_pauses_is_not_cut(busy):
    # 800 ms of CPU, 50 ms at a stretch: a sixth of the 300 ms limit, so a loaded machine that
    # leaves the thread waiting between its bursts does not make a stretch look long.
    answer = call(busy, "bursts", {"n": 16, "ms": 50})
    assert answer.status_code == 200 and answer.json()["result"] == "done", answer.text


def test_a_call_that_only_waits_past_its_deadline_ends_alone(busy):
    timeout = settings.RUNTIME_TIMEOUT_SECONDS
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        late = pool.submit(call, busy, "nap", {"ms": int(timeout * 1000) + 2000, "tag": "late"})
        time.sleep(0.3)
        # In flight when the first times out (0.3 s later it started), done before its own.
        on_time = pool.submit(
            call, busy, "nap", {"ms": int(timeout * 1000) - 100, "tag": "on-time"}
        )
        late, on_time = late.result(), on_time.result()
    assert late.status_code == 504 and late.json()["error"]["code"] == "timeout"
    # The other call, in the same isolate, was not failed by its neighbour's timeout.
    assert on_time.status_code == 200 and on_time.json()["result"] == "on-time"
