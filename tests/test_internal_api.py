"""The internal API runtime hosts use: token-guarded lookups and idempotent ingest."""

import json

import pytest
from django.conf import settings

from deployments.models import Artifact, Deployment
from telemetry.models import Invocation, LogEntry
from tenancy.models import Tenant

from .helpers import GREETER, build_now, create_deployment, ready_in_production


def auth(token=None):
    return {"HTTP_AUTHORIZATION": f"Bearer {token or settings.RUNTIME_TOKEN}"}


def test_without_the_token_everything_is_404(client, worker):
    deployment = ready_in_production(worker)
    deployment.artifact = Artifact.store("export async function hello() { return 1; }")
    deployment.save(update_fields=["artifact"])
    for url in [
        f"/internal/runtime/hosts/{deployment.host}",
        f"/internal/runtime/artifacts/{deployment.artifact_id}",
    ]:
        assert client.get(url).status_code == 404
        assert client.get(url, **auth("wrong")).status_code == 404
        # The same routes answer the runtime's token: the 404s above are the token's doing.
        assert client.get(url, **auth()).status_code == 200, url
    ingest = "/internal/runtime/ingest"
    assert client.post(ingest, "{}", content_type="application/json").status_code == 404
    assert client.post(ingest, "{}", content_type="application/json", **auth()).status_code == 200


def test_a_generated_deployment_asks_who_may_call_it_now(client, worker, other_tenant):
    """Its tenant served or not, its worker public or not, and the digests of the secrets that
    open it now: the worker's valid invocation secrets and the platform's own; nothing for
    another deployment's credential."""
    from deployments.generator import ingest_token, invoke_secret
    from tenancy.models import Tenant
    from workers import invocation_secrets
    from workers.models import Worker

    mine = create_deployment(worker, GREETER)
    theirs = create_deployment(Worker.objects.create(tenant=other_tenant, name="t"), GREETER)
    url = f"/internal/deployments/{mine.code}/access"

    def ask():
        return client.get(url, HTTP_AUTHORIZATION=f"Bearer {ingest_token(mine)}").json()

    first, value = invocation_secrets.issue(worker, "test")
    second, _ = invocation_secrets.issue(worker, "test")
    answer = ask()
    assert answer["serving"] and not answer["public"] and answer["message"] == ""
    assert answer["secrets"] == sorted([first.digest, second.digest])
    assert first.digest == invocation_secrets.digest(value)
    assert answer["platform"] == invocation_secrets.digest(invoke_secret(mine))
    invocation_secrets.revoke(first)
    assert ask()["secrets"] == [second.digest]
    Worker.objects.filter(pk=worker.pk).update(public=True)
    assert ask()["public"]
    Tenant.objects.filter(pk=worker.tenant_id).update(status=Tenant.Status.SUSPENDED)
    stopped = ask()
    assert not stopped["serving"] and "suspended" in stopped["message"]
    # Another deployment's credential, or none: nothing.
    other = client.get(url, HTTP_AUTHORIZATION=f"Bearer {ingest_token(theirs)}")
    assert other.status_code == 404 and client.get(url).status_code == 404
    # At most three valid at once: a rotation revokes the old one.
    invocation_secrets.issue(worker, "test")
    invocation_secrets.issue(worker, "test")
    with pytest.raises(invocation_secrets.TooMany):
        invocation_secrets.issue(worker, "test")


def test_a_deployment_about_to_be_ready_is_answered_only_for_preloading(client, worker):
    """A build stores the code, then asks the hosts to load it before it marks the deployment
    ready: a lookup for preloading answers it (with its code), one for serving does not; nor
    is a deployment whose code is not stored yet, or a suspended tenant's, answered at all."""
    deployment = create_deployment(worker, GREETER)
    Deployment.objects.filter(pk=deployment.pk).update(status=Deployment.Status.BUILDING)
    url = f"/internal/runtime/hosts/{deployment.host}"
    assert client.get(f"{url}?preload=1", **auth()).json()["error"]["code"] == (
        "deployment_not_ready"
    )
    artifact = Artifact.store("export async function hello() { return 1; }")
    Deployment.objects.filter(pk=deployment.pk).update(artifact=artifact, functions=["hello"])
    served = client.get(url, **auth())
    assert served.status_code == 404
    assert served.json()["error"]["code"] == "deployment_not_ready"
    preloading = client.get(f"{url}?preload=1", **auth()).json()
    assert preloading["id"] == str(deployment.code) and preloading["functions"] == ["hello"]
    assert preloading["code"] == "export async function hello() { return 1; }"
    assert client.get(f"{url}?preload=1").status_code == 404  # the runtime's token only
    Tenant.objects.filter(pk=worker.tenant_id).update(status=Tenant.Status.SUSPENDED)
    stopped = client.get(f"{url}?preload=1", **auth()).json()
    assert stopped["error"]["code"] == "tenant_suspended"


def test_a_build_waits_for_every_host_that_hears_its_preload(worker, settings):
    """Every host process that follows the preload requests answers on the list it names; the
    build waits for as many answers as Redis counted receivers, however long the operator
    allows (longer than the Redis client's own 2 s read timeout), and no longer. A host of an
    earlier version, which follows the announcements but answers no preload (a rolling
    upgrade), is not counted: each build would otherwise wait the whole time for it."""
    import json
    import threading
    import time

    import redis

    from deployments import announce

    deployment = create_deployment(worker, GREETER)
    listener = redis.Redis.from_url(settings.REDIS_URL)
    hosts = [listener.pubsub(), listener.pubsub()]
    for host in hosts:
        host.subscribe(announce.channel(), announce.preload_channel())
    older = listener.pubsub()
    older.subscribe(announce.channel())
    for host, channels in [(hosts[0], 2), (hosts[1], 2), (older, 1)]:
        for _ in range(channels):  # the subscriptions' confirmations
            assert host.get_message(timeout=1)["type"] == "subscribe"

    def answer(host, after: float):
        asked = None
        while asked is None:  # (other tests' announcements may come first)
            message = host.get_message(ignore_subscribe_messages=True, timeout=5)
            asked = json.loads(message["data"]).get("preload")
        assert asked == {
            "host": deployment.host, "tenant": worker.tenant_id, "answer": asked["answer"]
        }  # fmt: skip
        time.sleep(after)
        listener.rpush(asked["answer"], "host")

    settings.RUNTIME_PRELOAD_WAIT_SECONDS = 4
    slow = [threading.Thread(target=answer, args=(h, 2.2)) for h in hosts]
    for thread in slow:
        thread.start()
    assert announce.preload(deployment) == (2, 2)
    for thread in slow:
        thread.join()
    # The older host heard no preload request at all.
    assert older.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    # One host that never answers: the build goes on without it when the wait is over.
    settings.RUNTIME_PRELOAD_WAIT_SECONDS = 0.3
    quick = threading.Thread(target=answer, args=(hosts[0], 0))
    quick.start()
    assert announce.preload(deployment) == (2, 1)
    quick.join()
    for host in [*hosts, older]:
        host.close()


@pytest.mark.slow  # builds with Deno
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


def test_a_lookup_is_one_query_that_leaves_the_program_unread(
    client, worker, django_assert_num_queries
):
    """A runtime host looks a host up for a first call, an announcement and every expired
    cache entry: one query, canary included, and the uploaded program, build log and
    diagnostics (megabytes for a large upload) are not read for it."""
    stable = ready_in_production(worker)
    canary = create_deployment(worker, GREETER)
    canary.transition("queued", "building")
    canary.transition("building", "ready", functions=["hello"])
    artifact = Artifact.store("export async function hello() { return 1; }")
    Deployment.objects.filter(pk__in=[stable.pk, canary.pk]).update(
        artifact=artifact, files={"index.ts": GREETER}, build_log="built"
    )
    type(worker).objects.filter(pk=worker.pk).update(canary=canary, canary_percent=10)
    for host in (stable.host, worker.host):
        with django_assert_num_queries(1) as read:
            answer = client.get(f"/internal/runtime/hosts/{host}?have={artifact.sha256}", **auth())
        assert answer.status_code == 200 and answer.json()["id"] == str(stable.code)
        sql = read.captured_queries[0]["sql"]
        for column in ("files", "source", "build_log", "diagnostics"):
            assert f'"deployments_deployment"."{column}"' not in sql, column
    assert answer.json()["canary"] == {"host": canary.host, "percent": 10}


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


@pytest.mark.slow  # builds with Deno
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


def mixed_batch(deployment) -> dict:
    code = str(deployment.code)
    line = {"requestId": "req_2", "deploymentId": code, "function": "hello", "level": "log"}
    return {
        "invocations": [
            {"requestId": "req_2", "deploymentId": code, "function": "hello", "status": "ok",
             "statusCode": 200, "durationMs": 0.25, "startedAt": 1798761600000},
            {"requestId": "req_gone", "deploymentId": "7b0c5a3e-0000-4000-8000-000000000000",
             "status": "ok", "statusCode": 200, "startedAt": "2026-01-01T00:00:00Z"},
        ],
        "logs": [
            {**line, "seq": 2, "message": "sent first", "timestamp": "2026-01-01T00:00:00.002Z"},
            {**line, "seq": 0, "message": "a\u0000b", "timestamp": "2026-01-01T00:00:00.000Z"},
            {**line, "seq": 1, "message": "a literal \\u0000", "level": "shout", "timestamp": 1},
            {**line, "seq": 3, "deploymentId": "not-a-uuid", "message": "nowhere"},
        ],
    }  # fmt: skip


def stored_rows():
    invocations = list(
        Invocation.objects.values_list("request_id", "status_code", "duration_ms", "started_at")
    )
    lines = list(
        LogEntry.objects.order_by("id").values_list("seq", "level", "message", "timestamp")
    )
    return invocations, lines


@pytest.mark.slow  # builds with Deno
def test_ingest_skips_unknown_deployments_and_keeps_order_text_and_times(client, worker):
    deployment = build_now(worker, GREETER)
    response = client.post(
        "/internal/runtime/ingest",
        json.dumps(mixed_batch(deployment)),
        content_type="application/json",
        **auth(),
    )
    assert response.status_code == 200 and response.json() == {"invocations": 1, "logs": 3}
    invocations, lines = stored_rows()
    assert [(rid, code, ms) for rid, code, ms, _ in invocations] == [("req_2", 200, 0.25)]
    assert invocations[0][3].isoformat() == "2027-01-01T00:00:00+00:00"  # from milliseconds
    # In the order sent; NUL (which Postgres text cannot hold) shown as U+FFFD; a literal
    # backslash-u0000 left alone; an unknown level stored as "log".
    assert [(seq, level, text) for seq, level, text, _ in lines] == [
        (2, "log", "sent first"),
        (0, "log", "a\ufffdb"),
        (1, "log", "a literal \\u0000"),
    ]
    assert lines[0][3].isoformat() == "2026-01-01T00:00:00.002000+00:00"


@pytest.mark.slow  # builds with Deno
def test_the_row_by_row_ingest_used_on_sqlite_stores_the_same(worker):
    from telemetry.ingest import _store_runtime_batch

    deployment = build_now(worker, GREETER)
    batch = mixed_batch(deployment)
    for item in batch["logs"]:
        item["message"] = item["message"].replace("\u0000", "\ufffd")
    assert _store_runtime_batch(batch) == (1, 3)
    invocations, lines = stored_rows()
    assert [(rid, code, ms) for rid, code, ms, _ in invocations] == [("req_2", 200, 0.25)]
    assert [(seq, level, text) for seq, level, text, _ in lines] == [
        (2, "log", "sent first"),
        (0, "log", "a\ufffdb"),
        (1, "log", "a literal \\u0000"),
    ]


@pytest.mark.slow  # builds with Deno
def test_ingest_explains_a_batch_of_the_wrong_shape(client, worker):
    deployment = build_now(worker, GREETER)
    line = {"requestId": "req_3", "deploymentId": str(deployment.code), "seq": 0}
    for body in [
        {"logs": {"not": "a list"}},
        {"logs": [{**line, "seq": "first"}]},
        {"logs": [{**line, "timestamp": "yesterday-ish"}]},
        {"logs": [{**line, "seq": None}]},
    ]:
        response = client.post(
            "/internal/runtime/ingest", json.dumps(body), content_type="application/json", **auth()
        )
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_batch"
        assert "Bad batch" in response.json()["error"]["message"]
    assert not LogEntry.objects.exists()


def test_a_generated_deployment_reads_its_own_secrets_and_its_tenants_keys_only(
    client, worker, other_tenant
):
    from django.utils import timezone

    from deployments.deploy import snapshot_secrets
    from deployments.generator import ingest_token
    from workers.api_keys import issue_key
    from workers.models import ApiKey, Worker, WorkerSecret
    from workers.secrets import encrypt

    WorkerSecret.objects.create(worker=worker, name="API_SECRET", value_encrypted=encrypt("mine"))
    mine = create_deployment(worker, GREETER)
    mine.secrets_sealed = snapshot_secrets(worker)
    mine.save()
    theirs_worker = Worker.objects.create(tenant=other_tenant, name="theirs")
    WorkerSecret.objects.create(
        worker=theirs_worker, name="API_SECRET", value_encrypted=encrypt("theirs")
    )
    theirs = create_deployment(theirs_worker, GREETER)
    theirs.secrets_sealed = snapshot_secrets(theirs_worker)
    theirs.save()

    def get(path, deployment):
        return client.get(path, HTTP_AUTHORIZATION=f"Bearer {ingest_token(deployment)}")

    own = get(f"/internal/deployments/{mine.code}/secrets", mine)
    assert own.status_code == 200 and own.json() == {"env": {"API_SECRET": "mine"}}
    # Its credential opens nothing of another deployment's; the runtime's token is not asked.
    assert get(f"/internal/deployments/{theirs.code}/secrets", mine).status_code == 404
    assert client.get(f"/internal/deployments/{mine.code}/secrets").status_code == 404

    key, secret = issue_key(worker.tenant, "caller", ["invoke"])
    other_key = issue_key(other_tenant, "theirs", ["invoke"])[0]
    found = get(f"/internal/deployments/{mine.code}/keys/{key.prefix}", mine)
    assert found.status_code == 200 and found.json() == {
        "secretHash": key.secret_hash,
        "scopes": ["invoke"],
    }
    assert (
        get(f"/internal/deployments/{mine.code}/keys/{other_key.prefix}", mine).status_code == 404
    )
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert get(f"/internal/deployments/{mine.code}/keys/{key.prefix}", mine).status_code == 404


@pytest.mark.slow  # builds with Deno
def test_a_generated_deployment_hands_over_async_calls_as_runs_with_its_own_credential(
    client, worker, other_tenant
):
    """The contract of `?async=1` on the Vercel back end: the generated route stores the run
    here (deployments/backends/vercel_template/lib/invoke.ts) before it answers 202 with the status URL."""
    from deployments.generator import generate, ingest_token
    from runs.models import Run
    from workers.models import Worker

    mine = build_now(worker, GREETER)
    theirs = build_now(Worker.objects.create(tenant=other_tenant, name="theirs"), GREETER)
    url = f"/internal/deployments/{mine.code}/runs"
    body = {"function": "hello", "payload": '{"name": "V"}', "idempotencyKey": "k1", "key": ""}

    def post(deployment, data=body):
        return client.post(url, json.dumps(data), "application/json",
                           HTTP_AUTHORIZATION=f"Bearer {ingest_token(deployment)}")  # fmt: skip

    accepted = post(mine)
    assert accepted.status_code == 202
    run = Run.objects.get(code=accepted.json()["runId"])
    assert (run.deployment, run.payload, run.status) == (mine, '{"name": "V"}', "queued")
    assert accepted.json()["statusUrl"].endswith(f"/api/runs/{run.code}")
    assert post(mine).json()["runId"] == str(run.code)  # the same Idempotency-Key
    assert post(theirs).status_code == 404  # another deployment's credential opens nothing
    assert post(mine, {**body, "function": "nope"}).status_code == 404
    assert Run.objects.count() == 1
    generated = generate(mine, ["hello"])
    assert json.loads(generated["lib/deployment.json"])["runsUrl"].endswith(url)
    assert "handOver(request, fn" in generated["lib/invoke.ts"]


def test_a_generated_deployments_calls_to_its_peers_stay_in_one_release(
    client, worker, other_tenant, settings
):
    """A release moves Vercel's aliases one by one: a call that reached the old deployment
    through its production alias is told the old peers, one that reached the new one the new
    peers, each at its own immutable URL; a chain carries its generation on."""
    from deployments.generator import ingest_token
    from releases.models import Release, ReleaseItem
    from releases.production import promote_release
    from workers.models import Worker

    settings.VERCEL_ALIAS_DOMAIN = "fn.example.net"
    other = Worker.objects.create(tenant=worker.tenant, name="billing")
    a1, b1 = ready_in_production(worker), ready_in_production(other)
    Worker.objects.filter(pk__in=[worker.pk, other.pk]).update(auto_promote=False)
    a2, b2 = create_deployment(worker, GREETER), create_deployment(other, GREETER)
    never = create_deployment(worker, GREETER)
    for deployment in (a2, b2, never):
        deployment.transition("queued", "building")
        deployment.transition("building", "ready", functions=["hello"])
    for deployment in (a1, b1, a2, b2, never):
        Deployment.objects.filter(pk=deployment.pk).update(
            backend_url=f"https://{deployment.short_id}.vercel.test"
        )
    before = Tenant.objects.get(pk=worker.tenant_id).generation
    release = Release.objects.create(tenant=worker.tenant, name="both")
    ReleaseItem.objects.create(release=release, worker=worker, deployment=a2)
    ReleaseItem.objects.create(release=release, worker=other, deployment=b2)
    after = promote_release(release, "ann")
    billing = f"{other.host}.fn.example.net"

    def peer(deployment, host=billing, generation=""):
        url = f"/internal/deployments/{deployment.code}/peer"
        return client.get(url, {"host": host, "generation": generation},
                          HTTP_AUTHORIZATION=f"Bearer {ingest_token(deployment)}")  # fmt: skip

    assert peer(a1).json() == {"url": f"https://{b1.short_id}.vercel.test", "generation": before}
    assert peer(a2).json() == {"url": f"https://{b2.short_id}.vercel.test", "generation": after}
    # Further along a chain: the generation it was sent.
    assert peer(a1, generation=str(after)).json()["url"] == f"https://{b2.short_id}.vercel.test"
    assert peer(a2, generation=str(before)).json()["url"] == f"https://{b1.short_id}.vercel.test"
    # Fetched as they are: a deployment that never served production (no release to keep),
    # a deployment's own address, another tenant's worker, an address elsewhere.
    theirs = Worker.objects.create(tenant=other_tenant, name="billing")
    ready_in_production(theirs)
    nothing = {"url": None, "generation": None}
    assert peer(never).json() == nothing
    assert peer(a2, host=f"{b2.host}.fn.example.net").json() == nothing
    assert peer(a2, host=f"{theirs.host}.fn.example.net").json() == nothing
    assert peer(a2, host="billing.example.org").json() == nothing
    assert peer(a2, generation="soon").json() == nothing
    # Only with the deployment's own credential.
    assert client.get(f"/internal/deployments/{a2.code}/peer", {"host": billing}).status_code == 404
