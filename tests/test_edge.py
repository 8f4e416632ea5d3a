"""A tenant's own domain over HTTPS, end to end: a real DNS server (started here) holding the
tenant's verification record, Caddy run with docs/Caddyfile (its internal certificate
authority standing in for ACME) asking the platform before it issues a certificate, and the
runtime serving the worker at `https://api.customer.test`. A name nobody verified gets no
certificate; a name whose record goes stops being served at the next check."""

import os
import shutil
import ssl
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from workers.api_keys import issue_key
from workers.domains import check_due
from workers.models import Domain, Worker

from .conftest import ROOT, Process, free_port, wait_for
from .dns_server import DnsServer
from .helpers import SITE, build_now

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NAME = "api.customer.test"


@pytest.fixture
def edge(live_server, runtime, tmp_path):
    """Caddy with docs/Caddyfile in front of the test's runtime and portal: (https port,
    an SSL context trusting its certificate authority)."""
    http_port, https_port = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"), "PORTAL_HOST": "portal.platform.test",
        "PORTAL_UPSTREAMS": live_server.url.removeprefix("http://"),
        "RUNTIMES": settings.RUNTIME_URL.removeprefix("http://"),
        "RUNTIME_DOMAIN": settings.RUNTIME_DOMAIN, "RUNTIME_TLS": "internal",
        "CONTROL_PLANE": live_server.url, "EDGE_LOCAL_CERTS": "local_certs",
        "HTTP_PORT": str(http_port), "HTTPS_PORT": str(https_port),
    }  # fmt: skip
    caddy = shutil.which("caddy") or "/usr/bin/caddy"
    config = str(ROOT / "docs" / "Caddyfile")
    proc = Process("caddy", [caddy, "run", "--config", config, "--adapter", "caddyfile"], env)
    try:
        root = Path(tmp_path / "data/caddy/pki/authorities/local/root.crt")
        wait_for(root.exists, 30, "Caddy's certificate authority")
        context = ssl.create_default_context(cafile=str(root))
        yield https_port, context
    finally:
        proc.stop()


def over_https(port: int, context, name: str, path: str, **kwargs) -> httpx.Response:
    """A request to https://<name><path> through the edge (the name sent as SNI and Host,
    and the certificate checked against it), as a browser resolving the name would."""
    with httpx.Client(verify=context, timeout=30) as client:
        return client.request(
            kwargs.pop("method", "GET"), f"https://127.0.0.1:{port}{path}",
            headers={"host": name}, extensions={"sni_hostname": name}, **kwargs,
        )  # fmt: skip


def test_a_tenants_domain_answers_over_https_once_verified(edge, tenant, other_tenant, settings):
    port, context = edge
    site = build_now(Worker.objects.create(tenant=tenant, name="site", public=True), SITE)
    api = build_now(Worker.objects.create(tenant=tenant, name="api", public=True), SITE)
    for deployment in (site, api):
        Worker.objects.filter(pk=deployment.worker_id).update(production=deployment)
    with DnsServer() as dns:
        settings.DOMAINS_DNS_SERVERS = [dns.address]
        key = issue_key(tenant, "ops", ["manage", "read"])[1]
        client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        made = client.post("/api/domains", {"hostname": NAME}, content_type="application/json")
        record = made.json()["records"][0]
        dns.txt(record["name"], record["value"])
        assert client.post(f"/api/domains/{made.json()['id']}/check").json()["status"] == "verified"
        client.put(f"/api/domains/{made.json()['id']}/routes",
                   {"routes": [{"prefix": "/", "worker": "site"}, {"prefix": "/api/", "worker": "api"}]},
                   content_type="application/json")  # fmt: skip

        # The first HTTPS request gets a certificate for the name, and the worker answers.
        page = over_https(port, context, NAME, "/pricing?x=1")
        assert page.status_code == 200, page.text
        assert page.json() == {"host": NAME, "path": "/pricing"}
        called = over_https(port, context, NAME, "/api/invoke/hello", method="POST",
                            json={"name": "customer"})  # fmt: skip
        assert called.json()["result"] == {"greeting": "Hello, customer!"}
        assert called.headers["x-deployment-id"] == api.short_id  # the /api/ route's worker
        # Another tenant's deployment is not reachable under the tenant's name.
        theirs = build_now(Worker.objects.create(tenant=other_tenant, name="x", public=True), SITE)
        sneaky = over_https(port, context, NAME, f"/d/{theirs.host}/api/invoke/hello",
                            method="POST", json={})  # fmt: skip
        assert sneaky.json().get("host") == NAME  # the tenant's own site answered that path

        # A name nobody verified: no certificate, so no answer at all.
        with pytest.raises(httpx.ConnectError):
            over_https(port, context, "evil.customer.test", "/")
        # Asked directly (no TLS), the runtime says so without naming the platform.
        direct = httpx.get(f"{settings.RUNTIME_URL}/", headers={"host": "evil.customer.test"})
        assert direct.status_code == 421
        assert direct.json()["error"] == {"code": "domain_not_served",
                                          "message": "evil.customer.test is not served here."}  # fmt: skip

        # The record removed: the next check stops the domain, and the runtime follows.
        dns.forget(record["name"])
        Domain.objects.update(next_check_at=timezone.now())
        check_due()
        wait_for(lambda: over_https(port, context, NAME, "/").status_code == 421, 10,
                 "the domain to stop being served")  # fmt: skip
