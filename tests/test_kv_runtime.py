"""Workers' state through the real runtime: ctx.kv on a bound namespace (values, metadata,
expiry, listing, compare-and-set), the errors bad operations get, how soon a write made
elsewhere is seen, a counter incremented from two runtimes at once, and ctx.enqueue running
a function later through the runs machinery."""

import threading
import time

import httpx
import pytest
from django.conf import settings

from kv import store
from runs.models import Run

from .conftest import start_runtime, wait_for
from .helpers import built_with_namespace, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

STORE = program("state/store")


def deployed(tenant, name="store"):
    # Time enough for increments that retry while other calls increment the same key.
    return built_with_namespace(tenant, name, STORE, timeout_seconds=30)


def caller(base: str):
    def call(fn: str, body=None):
        answer = httpx.post(f"{base}/api/invoke/{fn}", json=body or {}, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()["result"]

    return call


def test_a_worker_keeps_values_in_its_namespace(runtime, tenant):
    worker, ns, deployment = deployed(tenant)
    call = caller(f"{settings.RUNTIME_URL}/d/{deployment.host}")
    assert call("bound") == ["COUNTERS"]
    assert call("count", {"times": 5}) == 5
    assert bytes(store.get(ns, "hits").value) == b"5"

    written = call(
        "remember", {"key": "user:1", "value": {"name": "Ann"}, "ttl": 60, "metadata": {"v": 2}}
    )
    assert written == {"ok": True, "version": 1}
    entry = call("recall", {"key": "user:1", "type": "json"})
    assert entry["value"] == {"name": "Ann"} and entry["metadata"] == {"v": 2}
    assert entry["version"] == 1 and entry["expiresAt"] is not None
    call("remember", {"key": "user:2", "value": "Bob"})
    assert call("keys", {"prefix": "user:"}) == {"names": ["user:1", "user:2"], "cursor": None}
    page = call("keys", {"prefix": "user:", "limit": 1})
    assert page["names"] == ["user:1"] and call(
        "keys", {"prefix": "user:", "cursor": page["cursor"]}
    )["names"] == ["user:2"]
    assert call("forget", {"key": "user:2"}) is True
    assert call("recall", {"key": "user:2"}) is None
    assert call("writeThenRead", {"key": "mine", "value": "fresh"}) == "fresh"

    # Bad operations fail in the code that made them, with a clear error, and change nothing.
    huge = call("misuse", {"what": "huge"})
    assert huge["name"] == "RangeError" and "at most 1048576 bytes" in huge["message"]
    long_key = call("misuse", {"what": "long key"})
    assert long_key["name"] == "RangeError" and "at most 512 characters" in long_key["message"]
    unbound = call("misuse", {"what": "unbound"})
    assert unbound["name"] == "TypeError"  # ctx.kv holds only the deployment's bindings
    assert store.get(ns, "huge") is None


def test_a_write_made_elsewhere_is_seen_within_a_second(runtime, tenant):
    _, ns, deployment = deployed(tenant)
    call = caller(f"{settings.RUNTIME_URL}/d/{deployment.host}")
    call("remember", {"key": "flag", "value": "off"})
    for _ in range(4):  # in the caches of this runtime's processes
        assert call("recall", {"key": "flag"})["value"] == "off"
    store.put(ns, "flag", b"on")  # as the portal or the API would
    changed = time.monotonic()
    wait_for(lambda: all(call("recall", {"key": "flag"})["value"] == "on" for _ in range(4)), 5,
             "every process to see the new value")  # fmt: skip
    seen_after = time.monotonic() - changed
    assert seen_after < 1 + 1.5, seen_after  # the cache holds a value 1 s; calls take some


def test_a_counter_incremented_from_two_runtimes_at_once_loses_nothing(runtime, tenant):
    _, ns, deployment = deployed(tenant)
    second, second_url = start_runtime()
    try:
        bases = [f"{settings.RUNTIME_URL}/d/{deployment.host}", f"{second_url}/d/{deployment.host}"]
        results, errors = [], []

        def increment(base):
            try:
                results.append(caller(base)("count", {"key": "shared", "times": 10}))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=increment, args=(bases[n % 2],)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert bytes(store.get(ns, "shared").value) == b"40"
        assert max(results) == 40
    finally:
        second.stop()


def test_code_enqueues_a_run_that_runs_later(runtime, start_worker, tenant):
    start_worker()
    worker, ns, deployment = deployed(tenant)
    worker.production = deployment
    worker.save()
    call = caller(f"{settings.RUNTIME_URL}/d/{deployment.host}")
    queued = call("later", {"note": "soon", "delay": 2, "key": "once"})
    again = call("later", {"note": "soon", "delay": 2, "key": "once"})
    assert again["runId"] == queued["runId"]
    run = Run.objects.get(code=queued["runId"])
    assert run.trigger == "enqueue" and run.status == "queued"
    time.sleep(1)
    assert store.get(ns, "note:soon") is None  # not before its delay
    wait_for(lambda: Run.objects.get(pk=run.pk).status == "succeeded", 30, "the enqueued run")
    assert store.get(ns, "note:soon") is not None
    assert Run.objects.filter(worker=worker).count() == 1
    # Another worker of the tenant, by name; a function it lacks is an error to the code.
    failed = httpx.post(f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/later",
                        json={"note": "x", "fn": "nope"}, timeout=30).json()  # fmt: skip
    assert failed["error"]["code"] == "function_error"
    assert 'has no function "nope"' in failed["error"]["message"]


def test_floods_get_clear_errors_and_other_tenants_keep_being_served(
    runtime, tenant, other_tenant, settings
):
    _, ns, deployment = deployed(tenant)
    _, _, theirs = deployed(other_tenant, name="neighbour")
    call = caller(f"{settings.RUNTIME_URL}/d/{deployment.host}")
    neighbour = caller(f"{settings.RUNTIME_URL}/d/{theirs.host}")
    # A key flood: the tenant's quota of keys stops it, in the code that wrote them.
    settings.QUOTA_MAX_KV_KEYS = 20
    flood = call("misuse", {"what": "flood"})
    assert flood["code"] == "quota_exceeded" and "quota of 20 stored keys" in flood["message"]
    assert store.held(tenant)[0] == 20
    # Operations per minute: past the quota, the code is told when to retry.
    settings.QUOTA_MAX_KV_OPERATIONS_PER_MINUTE = 5
    settings.QUOTA_MAX_KV_KEYS = 1000
    limited = call("misuse", {"what": "flood"})
    assert limited["code"] == "rate_limited" and "retry in" in limited["message"]
    # The other tenant's code reads and writes all the while.
    assert neighbour("count", {"times": 2}) == 2
