"""The internal API runtime hosts use: token-guarded lookups and idempotent ingest."""

import json

from django.conf import settings

from deployments.models import Invocation, LogEntry

from .helpers import GREETER, build_now, create_deployment


def auth(token=None):
    return {"HTTP_AUTHORIZATION": f"Bearer {token or settings.RUNTIME_TOKEN}"}


def test_without_the_token_everything_is_404(client, worker):
    deployment = build_now(worker, GREETER)
    for url in [
        f"/internal/runtime/hosts/{deployment.host}",
        f"/internal/runtime/artifacts/{deployment.artifact_id}",
    ]:
        assert client.get(url).status_code == 404
        assert client.get(url, **auth("wrong")).status_code == 404
    assert (
        client.post("/internal/runtime/ingest", "{}", content_type="application/json").status_code
        == 404
    )


def test_resolves_deployment_and_production_hosts(client, worker):
    deployment = build_now(worker, GREETER)
    body = client.get(f"/internal/runtime/hosts/{deployment.host}", **auth()).json()
    assert body["id"] == str(deployment.code)
    assert body["functions"] == ["hello"] and body["alias"] is False
    assert body["timeoutMs"] == int(settings.RUNTIME_TIMEOUT_SECONDS * 1000)
    assert "function hello" in body["code"]  # a cold start needs no second request
    again = client.get(
        f"/internal/runtime/hosts/{deployment.host}?have={body['artifact']}", **auth()
    )
    assert "code" not in again.json()  # ... and a host that has the code is not sent it again
    code = client.get(f"/internal/runtime/artifacts/{body['artifact']}", **auth())
    assert "function hello" in code.content.decode()

    alias = client.get(f"/internal/runtime/hosts/{worker.host}", **auth()).json()
    assert alias["id"] == str(deployment.code) and alias["alias"] is True


def test_a_deployment_that_is_not_ready_is_not_served(client, worker):
    deployment = create_deployment(worker, GREETER)
    response = client.get(f"/internal/runtime/hosts/{deployment.host}", **auth())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "deployment_not_ready"
    response = client.get(f"/internal/runtime/hosts/{worker.host}", **auth())
    assert response.json()["error"]["message"].endswith("has no ready deployment yet.")


def test_unknown_hosts_are_404(client, db):
    for host in ["nope--acme", "nope--abcdefgh--acme", "plain", "a--b--c--d"]:
        response = client.get(f"/internal/runtime/hosts/{host}", **auth())
        assert response.status_code == 404, host


def test_ingest_is_idempotent_and_keeps_identical_lines(client, worker):
    deployment = build_now(worker, GREETER)
    line = {"requestId": "req_1", "deploymentId": str(deployment.code), "level": "log",
            "message": "same text", "timestamp": "2026-01-01T00:00:00.000Z"}  # fmt: skip
    batch = {
        "invocations": [
            {"requestId": "req_1", "deploymentId": str(deployment.code), "function": "hello",
             "trigger": "http", "status": "ok", "statusCode": 200, "durationMs": 1.5,
             "startedAt": "2026-01-01T00:00:00.000Z"},
        ],
        # Two identical lines in the same millisecond are both real.
        "logs": [{**line, "seq": 0}, {**line, "seq": 1}],
    }  # fmt: skip
    for _ in range(2):  # a re-sent batch adds nothing
        response = client.post(
            "/internal/runtime/ingest", json.dumps(batch), content_type="application/json", **auth()
        )
        assert response.status_code == 200
    assert Invocation.objects.get().duration_ms == 1.5
    assert list(LogEntry.objects.values_list("seq", "message")) == [
        (0, "same text"),
        (1, "same text"),
    ]


def test_ingest_rejects_a_malformed_batch(client, db):
    response = client.post(
        "/internal/runtime/ingest", "not json", content_type="application/json", **auth()
    )
    assert response.status_code == 400
