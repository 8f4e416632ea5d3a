"""White-label: the operator's brand, a tenant's own brand and domain, no vendor names."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tenancy.models import Tenant
from workers.models import Worker

from .conftest import client_for
from .helpers import GREETER, build_now

VENDORS = re.compile(r"deno|vercel|django|next\.js", re.IGNORECASE)


def visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_platform_brand_by_default(client, db, settings):
    settings.PLATFORM_NAME = "Acme Functions Platform"
    assert "Acme Functions Platform" in client.get(reverse("login")).content.decode()


def test_tenant_brand_is_shown_to_its_members_only(tenant, owner, outsider):
    Tenant.objects.filter(pk=tenant.pk).update(
        brand_name="Acme Cloud", brand_color="#ff0066", support_email="help@acme.test"
    )
    page = client_for(Client, owner).get(reverse("dashboard")).content.decode()
    assert "Acme Cloud" in page and "#ff0066" in page and "help@acme.test" in page
    other = client_for(Client, outsider).get(reverse("dashboard")).content.decode()
    assert "Acme Cloud" not in other and "help@acme.test" not in other


def test_custom_domain_serves_the_portal_under_the_tenants_brand(tenant, settings):
    settings.ALLOWED_HOSTS = ["portal.acme.test", "testserver"]
    Tenant.objects.filter(pk=tenant.pk).update(
        brand_name="Acme Cloud", custom_domain="portal.acme.test"
    )
    page = Client().get(reverse("login"), HTTP_HOST="portal.acme.test").content.decode()
    assert "Acme Cloud" in page
    assert "Acme Cloud" not in Client().get(reverse("login")).content.decode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # builds with Deno
def test_no_vendor_name_in_tenant_facing_pages(tenant, owner):
    worker = Worker.objects.create(tenant=tenant, name="greeter")
    ready = build_now(worker, GREETER)
    broken = build_now(worker, GREETER.replace("return {", "return {{"))
    client = client_for(Client, owner)
    pages = [
        reverse("login"),
        reverse("dashboard"),
        reverse("new-worker"),
        reverse("worker", args=[worker.code]),
        reverse("deployment", args=[ready.code]),
        reverse("deployment", args=[broken.code]),
        reverse("worker-logs", args=[worker.code]),
        reverse("api-keys"),
        reverse("worker-secrets", args=[worker.code]),
        reverse("audit-log"),
    ]
    for url in pages:
        text = visible_text(client.get(url).content.decode())
        assert not VENDORS.search(text), (url, VENDORS.search(text).group(0))
    assert ready.url.startswith(f"http://greeter--{ready.short_id}--acme.")
