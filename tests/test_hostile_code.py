"""Hostile tenant code: each attempt gets a clear error and the host keeps serving others."""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings

from telemetry.models import LogEntry
from workers.models import Worker

from .conftest import wait_for
from .helpers import build_now, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

POLLUTER = program("hostile_code/polluter")
VICTIM = program("hostile_code/victim")
NAUGHTY = program("hostile_code/naughty")


HOG = program("hostile_code/hog")


SNOOP = program("hostile_code/snoop")


WHERE = program("hostile_code/where")


def deploy(tenant, name, source):
    worker = Worker.objects.create(tenant=tenant, name=name, public=True)
    deployment = build_now(worker, source)
    assert deployment.status == "ready", deployment.error_message
    return deployment


def call(deployment, fn, payload=None):
    return httpx.post(
        f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/{fn}",
        json=payload if payload is not None else {},
        timeout=30,
    )


def test_one_deployment_cannot_change_anothers_globals(runtime, tenant, other_tenant):
    polluter = deploy(tenant, "polluter", POLLUTER)
    victim = deploy(other_tenant, "victim", VICTIM)
    assert call(polluter, "pollute").json()["result"] == "done"
    assert call(victim, "look").json()["result"] == {
        "polluted": None,
        "shared": None,
        "fetchIsNative": True,
    }


def test_console_lines_cannot_be_hijacked_or_garbled_by_replaced_builtins(
    runtime, tenant, other_tenant
):
    snoop = deploy(tenant, "snoop", SNOOP)
    calm = deploy(other_tenant, "calm", VICTIM)
    body = call(snoop, "snoop").json()
    assert body["result"] == {"caught": 0}  # none of the replaced functions was called
    assert [(line["level"], line["message"]) for line in body["logs"]] == [
        ("log", "after the trap { n: 1 }"),
        ("warn", "ünïcode ✓"),
    ]
    assert call(calm, "look").status_code == 200


def test_errors_escaping_a_call_are_logged_and_the_isolate_lives_on(runtime, tenant):
    naughty = deploy(tenant, "naughty", NAUGHTY)
    for fn in ("timerThrows", "rejects"):
        assert call(naughty, fn).json()["result"] == "answered"
    wait_for(
        lambda: LogEntry.objects.filter(message__contains="thrown from a timer").exists(),
        5,
        "the timer error",
    )
    wait_for(
        lambda: LogEntry.objects.filter(message__contains="nobody awaits me").exists(),
        5,
        "the rejection",
    )
    assert LogEntry.objects.get(message__contains="thrown from a timer").level == "error"
    assert call(naughty, "ok").json()["result"] == "still fine"


def test_file_imports_and_private_addresses_are_refused(runtime, tenant):
    naughty = deploy(tenant, "naughty", NAUGHTY)
    imported = call(naughty, "importsFile")
    assert imported.status_code == 500
    assert "Requires read access" in imported.json()["error"]["message"]
    private = call(naughty, "privateNetwork")
    assert private.status_code == 500
    assert private.json()["error"]["message"] == (
        "Outbound request refused: 10.0.0.1 is 10.0.0.1, a loopback, private or reserved "
        "address; workers reach only public addresses."
    )
    assert call(naughty, "ok").json()["result"] == "still fine"


def test_allocating_without_end_stops_only_that_isolate(runtime, tenant, other_tenant):
    hog = deploy(tenant, "hog", HOG)
    calm = deploy(other_tenant, "calm", VICTIM)
    pid = httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(call, hog, "hog")
        time.sleep(0.5)  # the hog is at its heap limit by now
        while not pending.done():  # another tenant's calls keep being answered meanwhile
            assert call(calm, "look").status_code == 200
        answer = pending.result()
    assert answer.status_code in (500, 504)
    error = answer.json()["error"]
    assert error["code"] in ("memory_limit_exceeded", "timeout")
    assert f"{settings.RUNTIME_MEMORY_MB} MB" in error["message"]
    # The host process lived through it, and the deployment answers again.
    assert httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"] == pid
    assert call(hog, "ok").json()["result"] == "fine"


def test_the_isolate_shows_neither_the_install_path_nor_its_channel_to_the_host(runtime, tenant):
    where = call(deploy(tenant, "where", WHERE), "where").json()["result"]
    assert where == {"cwd": "/", "argv": ["/deno", "worker.js"], "port": None}


BUFFERS = program("hostile_code/buffers")


@pytest.mark.parametrize("how", ["typed", "buffer", "slice", "wasm", "text", "node"])
def test_buffers_count_against_the_memory_limit(runtime, tenant, other_tenant, how, settings):
    """Memory outside the JS heap (ArrayBuffers, typed arrays, WebAssembly memory, node's
    Buffers) counts:
    a deployment that fills 3 GB of buffers under a 128 MB limit is stopped, alone."""
    # The limit is met in 50-175 ms on a quiet machine; the slow lane's neighbours have
    # stretched that past the tests' 2 s timeout, which would then answer first.
    settings.RUNTIME_TIMEOUT_SECONDS = 10
    bomb = deploy(tenant, f"bomb-{how}", BUFFERS)
    calm = deploy(other_tenant, "calm", VICTIM)
    pid = httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"]
    answer = call(bomb, "bomb", {"mb": 3000, "how": how})
    assert answer.status_code == 500, answer.text
    error = answer.json()["error"]
    assert error["code"] == "memory_limit_exceeded"
    assert f"more than its {settings.RUNTIME_MEMORY_MB} MB" in error["message"]
    assert [line["message"] for line in answer.json()["logs"]] == ["filling buffers"]
    assert httpx.get(f"{settings.RUNTIME_URL}/healthz").json()["pid"] == pid
    assert call(calm, "look").status_code == 200
    # Under the limit, buffers work as ever, and are the same constructors code compares to.
    within = call(bomb, "fine", {"mb": 20}).json()["result"]
    assert within == {"ok": 20, "same": True, "isView": True}
