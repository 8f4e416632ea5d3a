"""Several machines: two runtimes (separate processes on their own ports, as two machines
would be) and one control plane behind the load balancer of docs/haproxy.cfg, run as it is
documented. Everything a tenant does goes through the balancer."""

import os
import shutil
import time

import httpx
import pytest
from django.utils import timezone

from deployments.models import Deployment
from telemetry.models import LogEntry
from tenancy.models import Tenant
from workers.api_keys import issue_key
from workers.models import ApiKey, Worker

from .conftest import ROOT, Process, free_port, start_runtime, wait_for
from .helpers import EDGE_CASES

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def balanced(live_server, start_worker):
    """The balancer's URL, and the two runtimes' own URLs behind it."""
    runtimes, started = [], []
    try:
        for _ in range(2):
            runtimes.append(start_runtime(RUNTIME_PROCESSES="1"))
            started.append(runtimes[-1][0])
        port = free_port()
        env = {
            **os.environ,
            "LISTEN": f"127.0.0.1:{port}",
            "RUNTIME_DOMAIN": "localhost",
            "PORTAL": live_server.url.removeprefix("http://"),
            "RUNTIME_1": runtimes[0][1].removeprefix("http://"),
            "RUNTIME_2": runtimes[1][1].removeprefix("http://"),
        }
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        config = str(ROOT / "docs" / "haproxy.cfg")
        started.append(Process("haproxy", [haproxy, "-db", "-f", config], env))
        url = f"http://127.0.0.1:{port}"

        def portal_up():
            try:
                return httpx.get(f"{url}/login/", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(portal_up, 30, "the balancer", 0.2)
        time.sleep(2.5)  # the runtimes' first health checks pass
        start_worker()
        yield url, [u for _, u in runtimes]
    finally:
        for proc in started:
            proc.stop()


def answered(runtimes, deployment, headers) -> set[int]:
    """The statuses each runtime answers a call with, asked directly."""
    url = f"/d/{deployment.host}/api/invoke/echo"
    return {httpx.post(f"{r}{url}", json={}, headers=headers).status_code for r in runtimes}


def test_two_runtimes_and_a_control_plane_behind_the_balancer(balanced, tenant):
    url, runtimes = balanced
    key = issue_key(tenant, "ci", ["deploy", "read", "invoke"])[1]
    auth = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=30) as lb:
        # Deploy through the balancer (the JSON API on the web process), built by Celery.
        sent = lb.post("/api/workers", json={"name": "spread", "code": EDGE_CASES}, headers=auth)
        assert sent.status_code == 202, sent.text
        worker = Worker.objects.get(name="spread")
        deployment = Deployment.objects.get(worker=worker)
        wait_for(lambda: Deployment.objects.get(pk=deployment.pk).is_terminal, 120, "the build")
        deployment.refresh_from_db()
        assert deployment.status == "ready", deployment.error_message

        # Calls through the balancer, by deployment host name and by path: both runtimes serve.
        host = {"host": f"{deployment.host}.localhost"}
        for n in range(8):
            by_name = lb.post("/api/invoke/echo", json={"n": n}, headers={**auth, **host})
            assert by_name.status_code == 200 and by_name.json()["result"] == {"got": {"n": n}}
        by_path = lb.post(f"/d/{deployment.host}/api/invoke/echo", json={}, headers=auth)
        assert by_path.status_code == 200
        for runtime in runtimes:
            assert httpx.get(f"{runtime}/healthz").json()["isolates"] >= 1, runtime

        # Live logs: the lines printed on both runtimes reach the control plane.
        naps = [
            lb.post("/api/invoke/nap", json={"ms": 1, "tag": str(n)}, headers={**auth, **host})
            for n in range(4)
        ]
        ids = {answer.json()["requestId"] for answer in naps}
        wait_for(lambda: LogEntry.objects.filter(request_id__in=ids).count() == 8, 10, "the lines")
        polled = lb.get(f"/api/workers/{worker.code}/logs/poll?cursor=0", headers=auth).json()
        assert {line["requestId"] for line in polled["lines"]} >= ids

        # A revoked key is refused by both runtimes within 5 s.
        ApiKey.objects.filter(tenant=tenant).update(revoked_at=timezone.now())
        wait_for(lambda: answered(runtimes, deployment, auth) == {401}, 5, "the revocation", 0.2)
        assert lb.post("/api/invoke/echo", json={}, headers={**auth, **host}).status_code == 401

        # A suspended tenant's deployments answer 403 on both within 5 s.
        fresh = {"authorization": f"Bearer {issue_key(tenant, 'again', ['invoke'])[1]}"}
        assert lb.post("/api/invoke/echo", json={}, headers={**fresh, **host}).status_code == 200
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
        wait_for(lambda: answered(runtimes, deployment, fresh) == {403}, 5, "the suspension", 0.2)
        refused = lb.post("/api/invoke/echo", json={}, headers={**fresh, **host}).json()
        assert refused["error"]["code"] == "tenant_suspended"
