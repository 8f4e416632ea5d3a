"""Canaries and releases as callers meet them, through the real runtime: the traffic split
and its stickiness, and calls between workers that never see half of a release."""

import collections
import threading
import time

import httpx
import pytest
from django.conf import settings

from releases.models import Release, ReleaseItem
from releases.production import end_canary, promote_release, revert_release, start_canary
from workers.models import Worker

from .conftest import wait_for
from .helpers import build_now, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

VERSION = 'export async function version() {{ return "{tag}"; }}\n'


# One connection kept open for the hundreds of calls these tests make (a new connection
# per call cost most of their time).
CALLER = httpx.Client(timeout=30)


def production(worker: Worker, fn: str, body: dict | None = None, **headers) -> httpx.Response:
    return CALLER.post(
        f"{settings.RUNTIME_URL}/d/{worker.host}/api/invoke/{fn}",
        json=body or {},
        headers=headers,
    )


def test_a_canary_takes_its_share_sticks_to_a_client_and_ends_with_one_click(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="split", public=True)
    stable = build_now(worker, VERSION.format(tag="stable"))
    fresh = build_now(worker, VERSION.format(tag="fresh"))
    Worker.objects.filter(pk=worker.pk).update(auto_promote=False)
    from releases.production import set_production

    set_production(worker, stable, "test")
    start_canary(worker, fresh, 30, "test")
    time.sleep(1.2)  # hosts trust what they learned for a second

    seen = collections.Counter()
    for _ in range(200):
        answer = production(worker, "version")
        tag = answer.json()["result"]
        seen[tag] += 1
        # Each answer names the deployment that served it.
        expected = fresh if tag == "fresh" else stable
        assert answer.headers["x-deployment-id"] == expected.short_id
    share = seen["fresh"] / 200
    assert 0.18 <= share <= 0.42, seen  # 30 %, give or take chance (3.7 standard deviations)

    # A client that names itself stays on one side; many clients spread over both.
    for client in ("alice", "bob", "carol"):
        sides = {production(worker, "version", **{"x-client-id": client}).json()["result"]
                 for _ in range(10)}  # fmt: skip
        assert len(sides) == 1, (client, sides)
    spread = collections.Counter(
        production(worker, "version", **{"x-client-id": f"user-{n}"}).json()["result"]
        for n in range(40)
    )
    assert spread["fresh"] > 0 and spread["stable"] > 0, spread

    end_canary(worker, "test", promote=False)
    time.sleep(1.2)
    assert {production(worker, "version").json()["result"] for _ in range(40)} == {"stable"}


FRONT = program("canary_runtime/front")


def test_calls_between_workers_never_meet_half_of_a_release(runtime, tenant):
    front = Worker.objects.create(tenant=tenant, name="front", public=True)
    back = Worker.objects.create(tenant=tenant, name="back", public=True)
    builds = {
        "v1": (build_now(front, FRONT.replace("TAG", "v1")), build_now(back, VERSION.format(tag="v1"))),
        "v2": (build_now(front, FRONT.replace("TAG", "v2")), build_now(back, VERSION.format(tag="v2"))),
    }  # fmt: skip
    releases = {}
    for name, (f, b) in builds.items():
        assert f.status == b.status == "ready", (f.error_message, b.error_message)
        releases[name] = Release.objects.create(tenant=tenant, name=name)
        ReleaseItem.objects.create(release=releases[name], worker=front, deployment=f)
        ReleaseItem.objects.create(release=releases[name], worker=back, deployment=b)
    promote_release(releases["v1"], "test")
    time.sleep(1.2)
    # The front worker calls the back worker's production URL, as any client would.
    back_url = (
        f"http://{back.host}.{settings.RUNTIME_DOMAIN}:{settings.RUNTIME_PORT}/api/invoke/version"
    )
    body = {"back": back_url, "wait": 150}
    first = production(front, "pair", body)
    assert first.json()["result"] == {"front": "v1", "back": "v1"}, first.text

    pairs, stop = collections.Counter(), threading.Event()

    def call_front():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(
                    f"{settings.RUNTIME_URL}/d/{front.host}/api/invoke/pair", json=body
                ).json()
                result = answer.get("result") or {}
                pairs[(result.get("front"), result.get("back"))] += 1

    callers = [threading.Thread(target=call_front) for _ in range(6)]
    for caller in callers:
        caller.start()
    try:
        # The callers are under way (on a loaded machine their first answers can take seconds)
        # before the first switch, so both releases are seen serving.
        wait_for(lambda: pairs[("v1", "v1")] > 0, 30, "calls served by the first release")
        # Switch back and forth while calls are in flight: each switch lands while some
        # front calls have started (as of one generation) and not yet called the back.
        for n in range(8):
            time.sleep(0.45)
            if n % 2 == 0:
                promote_release(releases["v2"], "test")
            else:
                revert_release(releases["v2"], "test")
        # Production URLs are cached for up to a second, so the short switches above may all
        # be seen as v1; the last one stays until calls are served by it (on a loaded
        # machine the hosts may take longer than the cache's second to hear of it).
        promote_release(releases["v2"], "test")
        wait_for(lambda: pairs[("v2", "v2")] > 0, 30, "calls served by the last release")
    finally:
        stop.set()
        for caller in callers:
            caller.join()
    assert set(pairs) <= {("v1", "v1"), ("v2", "v2")}, pairs
    assert pairs[("v1", "v1")] > 0 and pairs[("v2", "v2")] > 0, pairs


LOOP = program("canary_runtime/loop")


def test_a_worker_calling_itself_without_end_is_stopped_with_an_answer(runtime, tenant):
    worker = Worker.objects.create(tenant=tenant, name="loop", public=True)
    assert build_now(worker, LOOP).status == "ready"
    url = f"http://{worker.host}.{settings.RUNTIME_DOMAIN}:{settings.RUNTIME_PORT}/api/invoke/loop"
    answer = production(worker, "loop", {"url": url})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"] == "call_depth_exceeded"
    # The host is fine afterwards.
    wait_for(lambda: production(worker, "loop", {"url": "x"}).status_code == 500, 5, "an answer")
