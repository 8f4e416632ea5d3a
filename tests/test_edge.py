"""A tenant's own domain over HTTPS, end to end: a real DNS server (started here) holding the
tenant's verification record, Caddy run with docs/Caddyfile (its internal certificate
authority standing in for ACME) asking the platform before it issues a certificate, and the
runtime serving the worker at `https://api.customer.test`. A name nobody verified gets no
certificate; a name whose record goes stops being served at the next check."""

import json
import os
import shutil
import socket
import ssl
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from functions_cli.main import app as functions
from typer.testing import CliRunner

from tenancy.models import Tenant
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
        wait_for(lambda: listening(https_port), 30, "Caddy to listen")
        context = ssl.create_default_context(cafile=str(root))
        yield https_port, context
    finally:
        proc.stop()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def over_https(port: int, context, name: str, path: str, **kwargs) -> httpx.Response:
    """A request to https://<name><path> through the edge (the name sent as SNI and Host,
    and the certificate checked against it), as a browser resolving the name would."""
    with httpx.Client(verify=context, timeout=30) as client:
        return client.request(
            kwargs.pop("method", "GET"), f"https://127.0.0.1:{port}{path}",
            headers={"host": name}, extensions={"sni_hostname": name}, **kwargs,
        )  # fmt: skip


def test_a_tenants_domain_answers_over_https_once_verified(
    edge, live_server, tenant, other_tenant, settings, tmp_path
):
    port, context = edge
    site = build_now(Worker.objects.create(tenant=tenant, name="site", public=True), SITE)
    api = build_now(Worker.objects.create(tenant=tenant, name="api", public=True), SITE)
    for deployment in (site, api):
        Worker.objects.filter(pk=deployment.worker_id).update(production=deployment)
    with DnsServer() as dns:
        settings.DOMAINS_DNS_SERVERS = [dns.address]
        # The tenant's developer, with the CLI: claims the name, is told the record to create.
        key = issue_key(tenant, "ops", ["manage", "read"])[1]
        cli = CliRunner(env={"FUNCTIONS_URL": live_server.url, "FUNCTIONS_TOKEN": key,
                             "FUNCTIONS_CONFIG": str(tmp_path / "none.json"), "COLUMNS": "200"})  # fmt: skip
        added = cli.invoke(functions, ["domains", "add", "API.customer.test", "--json"])
        assert added.exit_code == 0, added.output
        record = json.loads(added.output)["records"][0]
        pending = cli.invoke(functions, ["domains", "check", NAME])
        assert pending.exit_code == 1 and f"No TXT record at {record['name']}" in pending.output
        assert f"TXT   {record['name']}  {record['value']}" in pending.output
        dns.txt(record["name"], record["value"])
        verified = cli.invoke(functions, ["domains", "check", NAME])
        assert verified.exit_code == 0 and "verified" in verified.output
        for prefix, worker in (("/", "site"), ("/api", "api")):
            routed = cli.invoke(functions, ["domains", "route", NAME, worker, "--prefix", prefix])
            assert routed.exit_code == 0, routed.output
        listed = cli.invoke(functions, ["domains", "list"]).output
        assert "/api/ -> api" in listed and "/ -> site" in listed

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


def test_a_tenants_portal_domain_serves_its_portal_under_its_brand(
    edge, live_server, tenant, owner, settings
):
    """A verified name set to serve the portal: the edge asks a runtime which tier serves it
    and sends it to the web processes, which accept the name (and only verified ones); a
    member signs in there and sees the tenant's brand, never the platform's name."""
    port, context = edge
    name = "portal.customer.test"
    Tenant.objects.filter(pk=tenant.pk).update(brand_name="Acme Cloud")
    with DnsServer() as dns:
        settings.DOMAINS_DNS_SERVERS = [dns.address]
        key = issue_key(tenant, "ops", ["manage", "read"])[1]
        api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
        made = api.post("/api/domains", {"hostname": name}, content_type="application/json").json()
        dns.txt(made["records"][0]["name"], made["records"][0]["value"])
        assert api.post(f"/api/domains/{made['id']}/check").json()["status"] == "verified"
        # Before it serves the portal, the name serves workers (none yet): not found.
        assert over_https(port, context, name, "/login/").status_code == 404
        # The CLI sets it to serve the portal.
        cli = CliRunner(env={"FUNCTIONS_URL": live_server.url, "FUNCTIONS_TOKEN": key,
                             "FUNCTIONS_CONFIG": "/nonexistent/none.json", "COLUMNS": "200"})  # fmt: skip
        served = cli.invoke(functions, ["domains", "portal", name])
        assert served.exit_code == 0 and f"Serves the portal: https://{name}/" in served.output

        with httpx.Client(verify=context, timeout=30, base_url=f"https://127.0.0.1:{port}",
                          headers={"host": name}) as browser:  # fmt: skip
            wait_for(lambda: browser.get("/login/", extensions={"sni_hostname": name}).status_code
                     == 200, 10, "the runtimes to learn the change")  # fmt: skip
            login = browser.get("/login/", extensions={"sni_hostname": name})
            assert "Acme Cloud" in login.text
            signed_in = browser.post("/login/", extensions={"sni_hostname": name}, data={
                "login": owner.username, "password": "pw-123456",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            })  # fmt: skip
            assert signed_in.status_code == 302, signed_in.text
            home = browser.get("/", extensions={"sni_hostname": name})
            assert home.status_code == 200 and "Acme Cloud" in home.text
    # The web processes answer no other name, whatever the edge or a client sends.
    stranger = httpx.get(f"{live_server.url}/login/", headers={"host": "evil.customer.test"})
    assert stranger.status_code == 400
