"""Logs a newcomer can read: a refusal the platform means is one line, not a traceback."""

import logging

import pytest
from django.test import Client
from django.urls import reverse

from tenancy.models import Tenant

from .conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_suspended_tenant_deploying_is_logged_as_one_line(owner, tenant, caplog):
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)
    client = client_for(Client, owner)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(reverse("new-worker"), {"name": "fresh", "source": "x"})
    assert response.status_code == 403
    refusals = [r for r in caplog.records if r.name == "django.request"]
    assert len(refusals) == 1
    assert refusals[0].getMessage().startswith("Forbidden")
    assert refusals[0].exc_info is None  # the record a handler prints: one line, no traceback


def test_a_server_error_keeps_its_traceback():
    from workers_portal.log_filters import NoTracebackBelow500

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, "", 0, "boom", (), sys.exc_info()
        )
    record.status_code = 500
    assert NoTracebackBelow500().filter(record) and record.exc_info is not None
