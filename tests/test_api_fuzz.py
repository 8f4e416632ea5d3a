"""A property-based fuzzer over the JSON API (schemathesis): for every operation of the
generated OpenAPI description, requests it allows and requests it forbids are sent, and
every answer must be JSON, documented, match its schema, and never be a server error."""

import pytest
import schemathesis
import schemathesis.transport.wsgi
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


def query_as_sent_over_http(case):
    """A query as an HTTP client sends it. An object value is sent as its keys, one parameter
    each, by `requests` (`?function=a&function=b` for {"a": 1, "b": 2}), and schemathesis's
    checks judge a negative case by that; its in-process transport sent `str()` of the object
    instead (`?function={'a': 1, 'b': 2}`), a valid string that the API rightly accepted, and
    the check then called that accepting invalid data."""
    query = wsgi_query(case)
    if isinstance(query, dict):
        query = {k: list(v) if isinstance(v, dict) and v else v for k, v in query.items()}
    return query


wsgi_query = schemathesis.transport.wsgi.prepare_query  # (an AttributeError if it moves)
schemathesis.transport.wsgi.prepare_query = query_as_sent_over_http
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


def test_the_fuzzer_sends_an_object_in_the_query_as_http_clients_do(key):
    """The case a fuzzing run reported as `?function=x&function=%5E&function=y` reaches the
    API as that, and is refused; one key is one valid value."""
    runs = schema["/api/runs"]["GET"]
    auth = {"Authorization": f"Bearer {key}"}
    three = runs.Case(query={"function": {"x": 1, "^": 2, "y": 3}}).call(headers=auth)
    assert three.status_code == 400
    assert "`function` may be given only once" in three.json()["error"]["message"]
    assert runs.Case(query={"function": {"^": 2}}).call(headers=auth).status_code == 200
