"""Outbound requests of tenant code: public addresses only by default (the control plane,
Redis, Postgres and metadata services are unreachable, also through names and redirects that
lead there), and the operator's allow and deny lists."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from workers.models import Worker

from .conftest import start_runtime
from .helpers import build_now, program

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROBE = program("egress/probe")


class Echo(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/inward":
            self.send_response(302)
            self.send_header("location", "http://10.0.0.1/secret")
            self.end_headers()
            return
        self.answer({"path": self.path})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        self.answer({"got": self.rfile.read(length).decode()})

    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def outside():
    """A local HTTP service standing in for the outside world (loopback, so refused unless
    the operator allows it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def probe(runtime_url, deployment, url, **extra):
    answer = httpx.post(
        f"{runtime_url}/d/{deployment.host}/api/invoke/get", json={"url": url, **extra}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def test_private_and_loopback_addresses_are_refused_by_default(runtime, tenant, outside):
    from django.conf import settings

    deployment = build_now(Worker.objects.create(tenant=tenant, name="probe", public=True), PROBE)
    refused = {
        f"http://127.0.0.1:{outside}/": "127.0.0.1, a loopback, private or reserved",
        f"http://localhost:{outside}/": "localhost is ",  # a name that leads inward
        f"http://[::1]:{outside}/": "::1",
        f"http://[::ffff:127.0.0.1]:{outside}/": "loopback, private or reserved",
        f"http://2130706433:{outside}/": "127.0.0.1",  # the same address, spelled as a number
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254",
        "http://10.1.2.3/": "10.1.2.3",
        "http://172.16.0.1/": "172.16.0.1",
        "http://192.168.1.1/": "192.168.1.1",
        "http://100.64.0.1/": "100.64.0.1",
        "http://[fd00::1]/": "fd00::1",
        "http://[fe80::1]/": "fe80::1",
        "ftp://example.com/": "only http and https",
        "http://name.invalid/": "does not resolve",
    }
    for url, reason in refused.items():
        result = probe(settings.RUNTIME_URL, deployment, url)
        assert "Outbound request refused" in result.get("refused", ""), (url, result)
        assert reason in result["refused"], (url, result)


def test_the_operators_allow_and_deny_lists(tenant, outside):
    deployment = build_now(Worker.objects.create(tenant=tenant, name="probe", public=True), PROBE)
    proc, url = start_runtime(
        RUNTIME_EGRESS_ALLOW=f"127.0.0.1:{outside},localhost", RUNTIME_EGRESS_DENY="localhost"
    )
    try:
        allowed = probe(url, deployment, f"http://127.0.0.1:{outside}/hello?x=1")
        assert allowed["status"] == 200 and json.loads(allowed["body"]) == {"path": "/hello?x=1"}
        assert allowed["type"] == "application/json"
        posted = probe(url, deployment, f"http://127.0.0.1:{outside}/", method="POST", body="hi")
        assert json.loads(posted["body"]) == {"got": "hi"}
        # A redirect is checked again: the allowed service cannot send the call inward.
        inward = probe(url, deployment, f"http://127.0.0.1:{outside}/inward")
        assert "10.0.0.1 is not on the operator's allow list" in inward["refused"]
        denied = probe(url, deployment, f"http://localhost:{outside}/")
        assert "localhost is on the operator's deny list" in denied["refused"]
        other = probe(url, deployment, "http://example.com/")
        assert "example.com is not on the operator's allow list" in other["refused"]
    finally:
        proc.stop()
