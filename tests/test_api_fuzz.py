"""A property-based fuzzer over the JSON API (schemathesis): for every operation of the
generated OpenAPI description, requests it allows and requests it forbids are sent, and
every answer must be JSON, documented, match its schema, and never be a server error."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from workers.api_keys import issue_key

from .helpers import GREETER, create_deployment

pytestmark = pytest.mark.fuzz  # half a minute: in `make test`, not in the edit loop

# Vercel's log drain also takes NDJSON: its body is sent as the text it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())
# The coverage phase sends one request per value of an enum, and a schedule may name any of
# ~600 time zones: two operations took a third of the fuzzer's time. It sends every 25th
# zone instead. That each listed zone is accepted holds by construction: the description and
# the check in runs/schedules.py both read zoneinfo.available_timezones().
components = schema.raw_schema["components"]["schemas"]
for zones in (
    components["ScheduleIn"]["properties"]["timeZone"]["enum"],
    components["ScheduleChangeIn"]["properties"]["timeZone"]["anyOf"][0]["enum"],
):
    zones[:] = zones[::25]
# The live stream never ends by itself; test_live_logs reads it.
schema = schema.exclude(path="/api/workers/{id}/logs")


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI app closes database connections when a request ends, as in production; the
    test's transaction must outlive each request (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def key(worker):
    create_deployment(worker, GREETER)
    return issue_key(worker.tenant, "fuzz", ["deploy", "read", "invoke"])[1]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_as_described(case, key):
    case.call_and_validate(headers={"Authorization": f"Bearer {key}"})
