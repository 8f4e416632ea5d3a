"""Tenants' own domains: claimed in the portal or the API, verified by a TXT record seen by a
real DNS server (started here), routed to workers by path prefix, checked again on a
schedule and no longer served once the record goes; the name held by the first tenant to
verify it, the platform's names held by nobody; owners and admins only, audited, and
nothing of one tenant's domains visible to another."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tenancy.models import AuditEvent, Tenant
from workers.api_keys import issue_key
from workers.domains import DomainError, check_due, may_have_certificate, normalise, routes_for
from workers.models import Domain, Worker

from .conftest import client_for
from .dns_server import DnsServer

NAME = "api.customer.test"
RECORD = f"_functions-challenge.{NAME}"


@pytest.fixture
def dns(settings):
    with DnsServer() as server:
        settings.DOMAINS_DNS_SERVERS = [server.address]
        settings.DOMAINS_DNS_TIMEOUT_SECONDS = 0.5
        yield server


def internal(client, path):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {settings.RUNTIME_TOKEN}")


def proof(domain: Domain) -> str:
    return f"functions-verify={domain.token}"


def test_names_are_checked_before_they_are_claimed(settings):
    settings.RUNTIME_DOMAIN = "run.example.com"
    settings.PLATFORM_HOSTS = ["portal.example.com"]
    assert normalise(" API.Customer.Test. ") == "api.customer.test"
    assert normalise("bücher.example") == "xn--bcher-kva.example"
    for bad, said in [
        ("", "Give a hostname"),
        ("10.0.0.1", "IP address"),
        ("*.customer.test", "Wildcard"),
        ("localhost", "not a full hostname"),
        ("api_customer.test", "letters, digits and hyphens"),
        ("-api.customer.test", "letters, digits and hyphens"),
        ("run.example.com", "belongs to the platform"),
        ("hello--acme.run.example.com", "belongs to the platform"),
        ("portal.example.com", "belongs to the platform"),
        ("x." * 130 + "test", "not"),
    ]:
        with pytest.raises(DomainError, match=said):
            normalise(bad)


def test_a_domain_from_claim_to_served_and_back(owner_client, worker, dns, client):
    page = owner_client.post(reverse("domains"), {"hostname": "API.customer.test"})
    assert page.status_code == 302
    domain = Domain.objects.get()
    assert domain.hostname == NAME and domain.status == "pending"
    shown = owner_client.get(reverse("domains")).content.decode()
    assert RECORD in shown and proof(domain) in shown and "Waiting for its record" in shown

    # Checked before the record exists: still pending, and why.
    owner_client.post(reverse("domain-act", args=[domain.code, "check"]))
    domain.refresh_from_db()
    assert domain.status == "pending" and domain.last_error == f"No TXT record at {RECORD}."
    assert internal(client, f"/internal/runtime/domains/{NAME}").status_code == 404
    assert client.get("/internal/edge/ask", {"domain": NAME}).status_code == 404

    # A wrong value says what it found.
    dns.txt(RECORD, "functions-verify=someone-else")
    owner_client.post(reverse("domain-act", args=[domain.code, "check"]))
    domain.refresh_from_db()
    assert domain.status == "pending" and "holds functions-verify=someone-else" in domain.last_error

    # The record: verified at the next scheduled check, then routed.
    dns.txt(RECORD, "v=spf1 -all", proof(domain))
    Domain.objects.update(next_check_at=timezone.now())
    assert check_due() == 1
    domain.refresh_from_db()
    assert domain.status == "verified" and domain.verified_at and not domain.last_error
    assert routes_for(NAME) == []  # verified, but no paths yet
    api = Worker.objects.create(tenant=worker.tenant, name="api")
    owner_client.post(reverse("domain-act", args=[domain.code, "route"]),
                      {"prefix": "/", "worker": "greeter"})  # fmt: skip
    owner_client.post(reverse("domain-act", args=[domain.code, "route"]),
                      {"prefix": "api", "worker": api.name})  # fmt: skip
    assert routes_for(NAME) == [
        {"prefix": "/api/", "host": "api--acme"},
        {"prefix": "/", "host": "greeter--acme"},
    ]
    answer = internal(client, f"/internal/runtime/domains/{NAME}")
    assert answer.json()["routes"][0] == {"prefix": "/api/", "host": "api--acme"}
    assert client.get("/internal/runtime/domains/" + NAME).status_code == 404  # no token
    assert client.get("/internal/edge/ask", {"domain": NAME}).status_code == 200
    assert client.get("/internal/edge/ask", {"domain": "other.customer.test"}).status_code == 404
    assert client.get("/internal/edge/ask").status_code == 400
    shown = owner_client.get(reverse("domains")).content.decode()
    assert "Verified" in shown and "/api/" in shown
    # Serving the tenant's portal instead: no worker routes, and back.
    owner_client.post(reverse("domain-act", args=[domain.code, "portal"]), {"on": "1"})
    assert (
        routes_for(NAME) == []
        and "Serves this tenant's portal" in owner_client.get(reverse("domains")).content.decode()
    )
    owner_client.post(reverse("domain-act", args=[domain.code, "portal"]), {"on": "0"})
    assert len(routes_for(NAME)) == 2

    # A DNS that does not answer changes nothing but the note.
    dns.zone.silent = True
    Domain.objects.update(next_check_at=timezone.now())
    check_due()
    domain.refresh_from_db()
    assert domain.status == "verified" and "did not answer" in domain.last_error
    dns.zone.silent = False

    # The record removed: not served from the next check on.
    dns.forget(RECORD)
    Domain.objects.update(next_check_at=timezone.now())
    check_due()
    domain.refresh_from_db()
    assert domain.status == "failing" and domain.failing_since is not None
    assert routes_for(NAME) is None and not may_have_certificate(NAME)
    assert "Not served since" in owner_client.get(reverse("domains")).content.decode()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"domain.add", "domain.check", "domain.route", "domain.portal"} <= actions


def test_the_first_tenant_to_verify_a_name_holds_it(tenant, other_tenant, owner, outsider, dns):
    ours = client_for(Client, owner)
    theirs = client_for(Client, outsider)
    ours.post(reverse("domains"), {"hostname": NAME})
    theirs.post(reverse("domains"), {"hostname": NAME})  # a claim of their own, both pending
    mine, other = Domain.objects.get(tenant=tenant), Domain.objects.get(tenant=other_tenant)
    dns.txt(RECORD, proof(mine), proof(other))
    ours.post(reverse("domain-act", args=[mine.code, "check"]))
    theirs.post(reverse("domain-act", args=[other.code, "check"]))
    mine.refresh_from_db()
    other.refresh_from_db()
    assert mine.status == "verified"
    assert other.status == "pending" and "Verified by another tenant first" in other.last_error
    # A newcomer is told at once, without being told who.
    third = Tenant.objects.create(slug="initech", name="Initech")
    from workers.domains import add

    with pytest.raises(DomainError, match="verified by another tenant") as refused:
        add(third, NAME, "someone")
    assert "acme" not in str(refused.value).lower()


def test_domains_are_for_owners_and_admins_and_hidden_from_outsiders(
    owner, developer, outsider, worker, tenant, dns
):
    domain = Domain.objects.create(tenant=tenant, hostname=NAME, token="t0k", status="verified")
    assert client_for(Client, developer).get(reverse("domains")).status_code == 403
    assert (
        client_for(Client, developer).post(reverse("domains"), {"hostname": "x.test"}).status_code
        == 403
    )
    stranger = client_for(Client, outsider)
    for act in ("check", "delete", "route", "unroute"):
        url = reverse("domain-act", args=[domain.code, act])
        assert stranger.post(url, {"worker": "greeter", "prefix": "/"}).status_code == 404
    assert NAME not in stranger.get(reverse("domains")).content.decode()
    key = issue_key(outsider.memberships.get().tenant, "ops", ["manage", "read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    for method, path in [
        ("get", f"/api/domains/{domain.code}"),
        ("delete", f"/api/domains/{domain.code}"),
        ("post", f"/api/domains/{domain.code}/check"),
        ("put", f"/api/domains/{domain.code}/routes"),
    ]:
        answer = getattr(api, method)(path, {"routes": []}, content_type="application/json")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert api.get("/api/domains").json()["domains"] == []
    assert Domain.objects.filter(pk=domain.pk).exists()


def test_a_suspended_tenants_domain_serves_nothing_and_changes_nothing(
    owner_client, tenant, worker
):
    domain = Domain.objects.create(tenant=tenant, hostname=NAME, token="t0k", status="verified")
    domain.routes.create(worker=worker, prefix="/")
    assert routes_for(NAME) == [{"prefix": "/", "host": "greeter--acme"}]
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended")
    assert routes_for(NAME) is None and not may_have_certificate(NAME)
    assert owner_client.post(reverse("domains"), {"hostname": "b.customer.test"}).status_code == 403
    removed = owner_client.post(reverse("domain-act", args=[domain.code, "delete"]))
    assert removed.status_code == 403 and Domain.objects.filter(pk=domain.pk).exists()


def test_the_api_claims_routes_and_removes_a_domain(tenant, worker, dns, settings):
    settings.DOMAINS_CNAME_TARGET = "edge.example.net"
    settings.QUOTA_MAX_DOMAINS = 1
    key = issue_key(tenant, "ops", ["manage", "read"])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    made = api.post("/api/domains", {"hostname": NAME}, content_type="application/json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "pending" and body["routes"] == []
    txt, cname = body["records"]
    assert txt["type"] == "TXT" and txt["name"] == RECORD
    assert cname == {"type": "CNAME", "name": NAME, "value": "edge.example.net",
                     "purpose": "brings its requests here"}  # fmt: skip
    over = api.post(
        "/api/domains", {"hostname": "b.customer.test"}, content_type="application/json"
    )
    assert over.status_code == 409 and "quota of 1 domains" in over.json()["error"]["message"]
    bad = api.post("/api/domains", {"hostname": "localhost"}, content_type="application/json")
    assert bad.status_code == 400 and "not a full hostname" in bad.json()["error"]["message"]

    dns.txt(RECORD, txt["value"])
    checked = api.post(f"/api/domains/{body['id']}/check").json()
    assert checked["status"] == "verified"
    routes = {
        "routes": [{"prefix": "/", "worker": "greeter"}, {"prefix": "/v1", "worker": "greeter"}]
    }
    routed = api.put(f"/api/domains/{body['id']}/routes", routes, content_type="application/json")
    assert routed.json()["routes"] == [{"prefix": "/", "worker": "greeter"},
                                       {"prefix": "/v1/", "worker": "greeter"}]  # fmt: skip
    unknown = api.put(f"/api/domains/{body['id']}/routes",
                      {"routes": [{"prefix": "/", "worker": "nobody"}]}, content_type="application/json")  # fmt: skip
    assert unknown.status_code == 400 and "No worker nobody" in unknown.json()["error"]["message"]
    assert len(routes_for(NAME)) == 2  # the refused change changed nothing
    assert api.delete(f"/api/domains/{body['id']}").status_code == 204
    assert routes_for(NAME) is None
    assert AuditEvent.objects.filter(action="domain.remove", target=NAME).exists()


def test_the_web_answers_the_platforms_names_and_verified_portal_domains_only(client, tenant):
    from workers.hosts import forget_portal_domains

    name = "portal.customer.test"
    Tenant.objects.filter(pk=tenant.pk).update(brand_name="Acme Cloud")
    domain = Domain.objects.create(tenant=tenant, hostname=name, token="t", status="pending",
                                   portal=True)  # fmt: skip
    assert client.get("/login/", HTTP_HOST=name).status_code == 400  # not verified yet
    Domain.objects.filter(pk=domain.pk).update(status="verified")
    forget_portal_domains()
    page = client.get("/login/", HTTP_HOST=name)
    assert page.status_code == 200 and "Acme Cloud" in page.content.decode()
    assert client.get("/login/", HTTP_HOST="other.customer.test").status_code == 400
    Domain.objects.filter(pk=domain.pk).update(portal=False)  # serves workers instead
    forget_portal_domains()
    assert client.get("/login/", HTTP_HOST=name).status_code == 400
    Domain.objects.filter(pk=domain.pk).update(portal=True)
    Tenant.objects.filter(pk=tenant.pk).update(status="suspended")
    forget_portal_domains()
    assert client.get("/login/", HTTP_HOST=name).status_code == 400
    assert client.get("/login/").status_code == 200  # the platform's own name
