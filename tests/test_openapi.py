"""The API answers as its OpenAPI description says: every documented path and method is
called, and each answer's status and body are checked against the description (which
django-ninja generates from the schemas that validate requests)."""

import base64
import hashlib
import hmac
import io
import json
import re
import tarfile
from uuid import uuid4

import pytest
from django.test import Client
from jsonschema import Draft202012Validator

from api.main import api as ninja_api
from api.schemas import SPACE
from deployments.models import Deployment
from tenancy.models import Tenant
from workers.api_keys import issue_key
from workers.models import Worker

from .helpers import GREETER, create_deployment
from .test_records import read_csv

S = Deployment.Status
SPEC = json.loads(json.dumps(ninja_api.get_openapi_schema(path_prefix="/api")))
checked: set[tuple[str, str]] = set()


def template_for(path: str) -> str:
    for template in SPEC["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the description")


def conforms(response, method: str, path: str):
    template = template_for(path.split("?")[0])
    operation = SPEC["paths"][template][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {template}: {status} is not documented"
    documented = operation["responses"][status].get("content", {}).get("application/json")
    if documented:
        schema = {**documented["schema"], "components": SPEC["components"]}
        Draft202012Validator(schema).validate(response.json())
    checked.add((method.lower(), template))
    return response


@pytest.fixture
def api(tenant):
    key = issue_key(tenant, "ci", ["deploy", "read"])[1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def call(method, path, body=None, raw=None, **headers):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json"} if data is not None else {}
        response = (
            getattr(client, method.lower())(path, data, **kwargs, **headers)
            if data is not None
            else getattr(client, method.lower())(path, **headers)
        )
        return conforms(response, method, path)

    return call


def test_the_description_is_served_and_its_schemas_are_valid(client, db):
    served = client.get("/api/openapi.json")
    assert served.status_code == 200 and served.json() == SPEC
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # One name, one meaning: `deploymentId` is only ever our id (of a log line's deployment).
    assert "deploymentId" not in SPEC["components"]["schemas"]["DeploymentOut"]["properties"]
    # Requests with fields the description does not name are refused, as it says.
    assert SPEC["components"]["schemas"]["DeployIn"]["additionalProperties"] is False


def patterns(node):
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns(value)


def engine_dependent(pattern: str) -> list[str]:
    """The parts of a pattern that ECMAScript (the description's dialect, what clients and the
    fuzzer read) and the server's engines read differently: class shorthands and a bare dot."""
    found, in_class, i = [], False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if pattern[i + 1] in "sSdDwWbB":
                found.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "." and not in_class:
            found.append(".")
        i += 1
    return found


def test_every_pattern_means_the_same_to_the_client_as_to_the_server(tenant):
    # A space that only one engine calls a space let a valid-looking invitation be refused
    # (U+0085 is \s to Python and Rust, not to ECMAScript): patterns spell their classes out.
    found = {p: engine_dependent(p) for p in set(patterns(SPEC)) if engine_dependent(p)}
    assert found == {}
    # The spelled-out spaces are every engine's: all Python's and Rust's (Unicode White_Space,
    # which str.isspace() covers) and ECMAScript's (those and U+FEFF).
    spaces = re.compile(f"[{SPACE}]")
    for code in [*range(0x3001), 0xFEFF]:
        if chr(code).isspace() or code == 0xFEFF:
            assert spaces.match(chr(code)), hex(code)
    # Blank is blank in every engine's sense, and the answer says which field.
    key = issue_key(tenant, "admin", ["manage", "deploy", "read"])[1]
    caller = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    for path, body, field in [
        ("/api/releases", {"name": "\u0085\u3000", "deployments": [str(uuid4())]}, "name"),
        ("/api/invitations", {"email": "a@b.\u0085c", "role": "viewer"}, "email"),
    ]:
        answer = conforms(caller.post(path, body, content_type="application/json"), "POST", path)
        assert answer.status_code == 400
        assert answer.json()["error"]["message"].startswith(f"Invalid request: {field}:")


def test_every_operation_answers_as_described(
    api, tenant, other_tenant, settings, owner, developer
):
    created = api("POST", "/api/workers", {"name": "greeter", "code": GREETER})
    assert created.status_code == 202
    worker = Worker.objects.get(name="greeter")
    ready = create_deployment(worker, GREETER)
    ready.transition(S.QUEUED, S.BUILDING)
    ready.transition(S.BUILDING, S.READY, functions=["hello"])
    queued = worker.deployments.exclude(pk=ready.pk).first()

    api("GET", "/api/workers")
    api("GET", f"/api/workers/{worker.code}")
    api("GET", f"/api/workers/{worker.code}/deployments")
    api("GET", f"/api/deployments/{ready.code}")
    assert api("GET", f"/api/deployments/{ready.code}/files").json() == {
        "entry": "index.ts",
        "files": {"index.ts": GREETER},
    }
    # Several files, and a .tar.gz; one of code, files and archive, with clean paths.
    many = {"name": "many", "files": {"index.ts": GREETER, "lib/a.ts": "export const a = 1;"}}
    sent = api("POST", "/api/workers", many)
    assert sent.status_code == 202 and sent.json()["deployment"]["files"] == [
        "index.ts",
        "lib/a.ts",
    ]
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for name, text in {
            "app/src/main.ts": GREETER,
            "app/deno.json": '{"exports": "./src/main.ts"}',
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    archived = api(
        "POST",
        "/api/workers",
        {"name": "packed", "archive": base64.b64encode(packed.getvalue()).decode()},
    )
    assert archived.status_code == 202 and archived.json()["deployment"]["entry"] == "src/main.ts"
    both = {"name": "both", "code": GREETER, "files": {"index.ts": GREETER}}
    assert api("POST", "/api/workers", both).status_code == 400
    outside = {"name": "outside", "files": {"../etc/x.ts": GREETER}}
    assert api("POST", "/api/workers", outside).status_code == 400
    # What the description allows is accepted; an upload that is no program fails as a build.
    nocode = api("POST", "/api/workers", {"name": "nocode", "files": {"README.md": "hi"}})
    assert nocode.status_code == 202
    assert nocode.json()["deployment"]["status"] == "error"
    assert (
        nocode.json()["deployment"]["errorMessage"] == "No code: the upload has no .ts or .js file."
    )
    api("GET", f"/api/workers/{worker.code}/logs/poll")
    api("GET", f"/api/workers/{worker.code}/logs/poll?cursor=0")
    assert (
        api("POST", f"/api/workers/{worker.code}/production", {"id": str(ready.code)}).status_code
        == 200
    )
    assert (
        api("POST", f"/api/workers/{worker.code}/production", {"id": str(queued.code)}).status_code
        == 409
    )
    assert api("POST", f"/api/deployments/{queued.code}/cancel").status_code == 200
    assert api("POST", f"/api/deployments/{queued.code}/cancel").status_code == 409
    # Errors are described too.
    assert api("POST", "/api/workers", raw="{nope").status_code == 400
    assert api("POST", "/api/workers", {"name": "Bad Name", "code": GREETER}).status_code == 400
    settings.MAX_SOURCE_BYTES = 10
    assert api("POST", "/api/workers", {"name": "big", "code": "x" * 11}).status_code == 413
    settings.MAX_SOURCE_BYTES = 1024 * 1024
    assert api("GET", "/api/workers/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api("GET", "/api/workers", HTTP_AUTHORIZATION="Bearer wk_00_bad").status_code == 401
    reader = issue_key(tenant, "reader", ["read"])[1]
    assert (
        api(
            "DELETE", f"/api/workers/{worker.code}", HTTP_AUTHORIZATION=f"Bearer {reader}"
        ).status_code
        == 403
    )
    # Canaries and releases.
    other = create_deployment(worker, GREETER + "//2")
    other.transition(S.QUEUED, S.BUILDING)
    other.transition(S.BUILDING, S.READY, functions=["hello"])
    canary = f"/api/workers/{worker.code}/canary"
    started = api("PUT", canary, {"deployment": str(other.code), "percent": 10})
    assert started.status_code == 200 and started.json()["canary"]["percent"] == 10
    assert started.json()["canary"]["canary"]["calls"] == 0
    assert api("PUT", canary, {"deployment": str(other.code), "percent": 100}).status_code == 400
    assert api("PUT", canary, {"deployment": str(other.code), "percent": "5"}).status_code == 400
    assert api("PUT", canary, {"deployment": str(queued.code), "percent": 5}).status_code == 409
    assert api("POST", f"{canary}/promote").json()["production"]["id"] == str(other.code)
    assert api("DELETE", canary).status_code == 409  # none under way
    api("PUT", canary, {"deployment": str(ready.code), "percent": 50, "autoRollback": True})
    assert api("DELETE", canary).json()["canary"] is None
    release = api("POST", "/api/releases", {"name": "r1", "deployments": [str(ready.code)]})
    assert release.status_code == 201 and release.json()["status"] == "draft"
    rid = release.json()["id"]
    both = {"name": "r2", "deployments": [str(ready.code), str(other.code)]}
    assert api("POST", "/api/releases", both).status_code == 409  # two of one worker
    assert api("POST", "/api/releases", {"name": "r3", "deployments": []}).status_code == 400
    assert [r["id"] for r in api("GET", "/api/releases").json()["releases"]] == [rid]
    assert api("GET", f"/api/releases/{rid}").json()["name"] == "r1"
    live = api("POST", f"/api/releases/{rid}/promote")
    assert live.json()["status"] == "live"
    assert live.json()["previous"] == {str(worker.code): str(other.code)}
    assert api("POST", f"/api/releases/{rid}/promote").status_code == 409
    assert api("POST", f"/api/releases/{rid}/revert").json()["status"] == "reverted"
    assert api("POST", f"/api/releases/{rid}/revert").status_code == 409
    assert api("GET", "/api/releases/00000000-0000-0000-0000-000000000000").status_code == 404
    worker.refresh_from_db()
    assert worker.production == other  # the revert put back what served before

    # Usage.
    assert api("GET", "/api/usage?days=7").json()["tenant"] == tenant.slug
    assert api("GET", "/api/usage?days=0").status_code == 400
    # Invocation history.
    assert api("GET", f"/api/workers/{worker.code}/invocations?status=ok").json()["next"] is None
    assert api("GET", f"/api/deployments/{ready.code}/invocations?since=0").status_code == 200
    assert api("GET", f"/api/deployments/{ready.code}/invocations?before=0").status_code == 400
    # Runs, dead letters, retry policy and schedules.
    from runs.models import Run

    dead = Run.objects.create(
        tenant=tenant, worker=worker, deployment=ready, function="hello", status="dead",
        error_code="function_error", error_message="boom",
    )  # fmt: skip
    assert api("GET", f"/api/runs/{dead.code}").json()["error"]["code"] == "function_error"
    assert api("GET", "/api/runs/00000000-0000-0000-0000-000000000000").status_code == 404
    assert api("GET", f"/api/workers/{worker.code}/runs?status=dead").json()["runs"][0][
        "id"
    ] == str(dead.code)
    assert api("GET", "/api/runs?status=nope").status_code == 400
    assert api("GET", "/api/runs").status_code == 200
    assert len(api("GET", f"/api/workers/{worker.code}/dead-letters").json()["runs"]) == 1
    assert len(api("GET", "/api/dead-letters").json()["runs"]) == 1
    invoker = {"HTTP_AUTHORIZATION": f"Bearer {issue_key(tenant, 'ops', ['invoke'])[1]}"}
    assert api("POST", f"/api/runs/{dead.code}/discard").status_code == 403  # no invoke scope
    assert api("POST", f"/api/runs/{dead.code}/discard", **invoker).status_code == 200
    replayed = api("POST", f"/api/runs/{dead.code}/replay", {"onProduction": True}, **invoker)
    assert replayed.status_code == 202
    assert (
        api("POST", "/api/dead-letters/replay", {"onProduction": True}, **invoker).status_code
        == 202
    )
    # Events: to a run that waits (its wait matched on a field), and to every waiting run.
    from runs.models import Step

    waiting = Run.objects.create(
        tenant=tenant, worker=worker, deployment=ready, function="hello", status="waiting",
    )  # fmt: skip
    Step.objects.create(run=waiting, name="ok", kind="wait", status="parked", event="ok",
                        match={"order": 1})  # fmt: skip
    sent = api("POST", f"/api/runs/{waiting.code}/events", {"name": "ok", "payload": {"order": 1}},
               **invoker)  # fmt: skip
    assert sent.status_code == 202 and Run.objects.get(pk=waiting.pk).status == "queued"
    assert api("GET", f"/api/runs/{waiting.code}").json()["steps"][0]["event"] == "ok"
    assert (
        api("POST", f"/api/runs/{dead.code}/events", {"name": "ok"}, **invoker).status_code == 409
    )
    everyone = api("POST", "/api/events", {"worker": str(worker.code), "name": "ok"}, **invoker)
    assert everyone.status_code == 202 and everyone.json()["delivered"] == []
    assert api("POST", f"/api/runs/{waiting.code}/cancel", **invoker).json()["status"] == "failed"
    assert api("POST", f"/api/runs/{waiting.code}/cancel", **invoker).status_code == 409
    policy = f"/api/workers/{worker.code}/retry-policy"
    assert api("GET", policy).json()["retryOn"] == ["error", "timeout", "limit"]
    body = {"attempts": 2, "backoffSeconds": 1, "maxDelaySeconds": 5, "retryOn": []}
    assert api("PUT", policy, body).json()["attempts"] == 2
    schedules = f"/api/workers/{worker.code}/schedules"
    made = api("POST", schedules, {"function": "hello", "cron": "0 * * * *"})
    assert made.status_code == 201
    assert api("GET", schedules).json()["schedules"][0]["timeZone"] == "UTC"
    one = f"/api/schedules/{made.json()['id']}"
    assert api("GET", one).status_code == 200
    assert api("PATCH", one, {"timeZone": "Nowhere/City"}).status_code == 400
    assert api("PATCH", one, {"paused": True}).json()["paused"] is True
    assert api("DELETE", one).status_code == 204

    # Secrets: names and dates, never values; the manage scope.
    admin = {"HTTP_AUTHORIZATION": f"Bearer {issue_key(tenant, 'admin', ['read', 'manage'])[1]}"}
    secrets = f"/api/workers/{worker.code}/secrets"
    assert api("PUT", f"{secrets}/TOKEN", {"value": "s3cret"}).status_code == 403  # no scope
    put = api("PUT", f"{secrets}/TOKEN", {"value": "s3cret"}, **admin)
    assert put.status_code == 200 and "s3cret" not in put.content.decode()
    assert api("PUT", f"{secrets}/bad-name", {"value": "x"}, **admin).status_code == 400
    assert api("PUT", f"{secrets}/TOKEN", {"value": 1}, **admin).status_code == 400
    listed = api("GET", secrets, **admin).json()
    assert [s["name"] for s in listed["secrets"]] == ["TOKEN"] and "s3cret" not in str(listed)
    assert api("DELETE", f"{secrets}/TOKEN", **admin).status_code == 204
    assert api("DELETE", f"{secrets}/TOKEN", **admin).status_code == 404
    assert api("DELETE", f"{secrets}/bad-name", **admin).status_code == 400
    assert api("GET", secrets).status_code == 403  # reading values' names needs manage too

    # Key-value namespaces: created, written, read, listed, bound, emptied, removed.
    made = api("POST", "/api/kv/namespaces", {"name": "cache"}, **admin).json()
    ns = f"/api/kv/namespaces/{made['id']}"
    assert api("GET", "/api/kv/namespaces").json()["namespaces"][0]["name"] == "cache"
    assert api("PUT", f"{ns}/value?key=a", {"value": "1"}, **admin).json()["version"] == 1
    assert (
        api("PUT", f"{ns}/value?key=a", {"value": "1", "ifVersion": 0}, **admin).status_code == 409
    )
    assert api("GET", f"{ns}/value?key=a").json()["value"] == "1"
    assert [k["key"] for k in api("GET", f"{ns}/keys").json()["keys"]] == ["a"]
    bindings = f"/api/workers/{worker.code}/kv-bindings"
    assert api("PUT", f"{bindings}/CACHE", {"namespace": made["id"]}, **admin).status_code == 200
    assert api("GET", bindings).json()["bindings"][0]["name"] == "CACHE"
    assert api("DELETE", f"{bindings}/CACHE", **admin).status_code == 204
    assert api("DELETE", f"{ns}/value?key=a", **admin).status_code == 204
    assert api("POST", f"{ns}/empty", **admin).json() == {"removed": 0}
    assert api("DELETE", ns, **admin).status_code == 204

    # Plain settings: values shown, to readers too; changed with manage.
    plain = f"/api/workers/{worker.code}/settings"
    assert api("PUT", f"{plain}/FLAG", {"value": "on"}).status_code == 403
    assert api("PUT", f"{plain}/FLAG", {"value": "on"}, **admin).json()["value"] == "on"
    assert api("PUT", f"{plain}/bad-name", {"value": "x"}, **admin).status_code == 400
    assert api("GET", plain).json()["settings"][0]["value"] == "on"
    assert api("DELETE", f"{plain}/FLAG", **admin).status_code == 204
    assert api("DELETE", f"{plain}/FLAG", **admin).status_code == 404

    # The audit log (manage) and the charts' series (read), as JSON; the log as CSV too.
    log = api("GET", "/api/audit?action=secret.", **admin).json()
    assert [e["action"] for e in log["events"]] == ["secret.delete", "secret.set"]
    assert log["events"][0]["actor"].startswith("API key admin") and log["next"] is None
    assert api("GET", "/api/audit?action=Bad!", **admin).status_code == 400
    assert api("GET", "/api/audit").status_code == 403  # no manage scope
    assert api("GET", "/api/audit?tenant=globex", **admin).status_code == 404
    exported = api("GET", "/api/audit/export?action=secret.", **admin)
    assert exported["content-type"].startswith("text/csv")
    rows = read_csv(exported)
    assert rows[0][:3] == ["created", "tenant", "actor"] and len(rows) == 3
    metrics = api("GET", f"/api/workers/{worker.code}/metrics?range=1h").json()
    assert metrics["step"] == 60 and len(metrics["points"]) >= 60 and metrics["calls"] == 0
    assert api("GET", f"/api/workers/{worker.code}/metrics?range=2h").status_code == 400

    # The tenant's log drains: public addresses only, the secret answered once.
    refused = api("POST", "/api/drains", {"url": "http://127.0.0.1:9/x"}, **admin)
    assert refused.status_code == 400 and "loopback" in refused.json()["error"]["message"]
    settings.DRAIN_ALLOW_PRIVATE = True
    drain = api("POST", "/api/drains", {"url": "http://127.0.0.1:9/x"}, **admin)
    assert drain.status_code == 201 and len(drain.json()["secret"]) == 64
    listed = api("GET", "/api/drains", **admin).json()["drains"]
    assert [d["id"] for d in listed] == [drain.json()["id"]] and "secret" not in listed[0]
    assert api("POST", "/api/drains", {"url": "ftp://x"}, **admin).status_code == 400
    assert api("GET", "/api/drains").status_code == 403
    one = f"/api/drains/{drain.json()['id']}"
    assert api("POST", f"{one}/resume", **admin).json()["status"] == "active"
    assert api("DELETE", one, **admin).status_code == 204
    assert api("DELETE", one, **admin).status_code == 404

    # Event subscriptions: chosen types (or all), the secret answered once, pings and
    # redeliveries listed as deliveries.
    made = api("POST", "/api/events/subscriptions",
               {"url": "http://127.0.0.1:9/hook", "types": ["deployment.ready"]}, **admin)  # fmt: skip
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    assert api("POST", "/api/events/subscriptions", {"url": "http://127.0.0.1:9/h",
               "types": ["deployment.exploded"]}, **admin).status_code == 400  # fmt: skip
    assert api("GET", "/api/events/subscriptions").status_code == 403
    listed = api("GET", "/api/events/subscriptions", **admin).json()["subscriptions"]
    assert [s["types"] for s in listed] == [["deployment.ready"]] and "secret" not in listed[0]
    one = f"/api/events/subscriptions/{made.json()['id']}"
    pinged = api("POST", f"{one}/ping", **admin).json()
    assert pinged["event"]["type"] == "ping" and pinged["status"] == "pending"
    deliveries = api("GET", "/api/events/deliveries?status=pending", **admin).json()
    assert [d["id"] for d in deliveries["deliveries"]] == [pinged["id"]]
    assert api("GET", "/api/events/deliveries?status=lost", **admin).status_code == 400
    again = api("POST", f"/api/events/deliveries/{pinged['id']}/redeliver", **admin)
    assert again.status_code == 202 and again.json()["event"]["id"] == pinged["event"]["id"]
    assert api("POST", f"{one}/resume", **admin).json()["status"] == "active"
    assert api("DELETE", one, **admin).status_code == 204
    assert api("DELETE", one, **admin).status_code == 404
    assert (
        api("POST", f"/api/events/deliveries/{pinged['id']}/redeliver", **admin).status_code == 404
    )

    # Domains: claimed with the record to create, checked (no DNS answers here: the reason
    # is said), routed to workers, removed.
    settings.DOMAINS_DNS_SERVERS, settings.DOMAINS_DNS_TIMEOUT_SECONDS = ["127.0.0.1:9"], 0.2
    claimed = api("POST", "/api/domains", {"hostname": "shop.customer.test"}, **admin)
    assert claimed.status_code == 201 and claimed.json()["records"][0]["type"] == "TXT"
    assert api("POST", "/api/domains", {"hostname": "a b"}, **admin).status_code == 400
    assert api("GET", "/api/domains").status_code == 403
    one = f"/api/domains/{claimed.json()['id']}"
    assert [d["hostname"] for d in api("GET", "/api/domains", **admin).json()["domains"]] == [
        "shop.customer.test"
    ]
    looked = api("POST", f"{one}/check", **admin).json()
    assert looked["status"] == "pending" and looked["lastError"]
    routed = api("PUT", f"{one}/routes", {"routes": [{"prefix": "/", "worker": "greeter"}]},
                 **admin)  # fmt: skip
    assert routed.json()["routes"] == [{"prefix": "/", "worker": "greeter"}]
    assert api("PUT", f"{one}/routes", {"routes": [{"prefix": "x", "worker": "greeter"}]},
               **admin).status_code == 400  # fmt: skip
    assert api("GET", one, **admin).json()["hostname"] == "shop.customer.test"
    assert api("DELETE", one, **admin).status_code == 204
    assert api("GET", one, **admin).status_code == 404

    # Members and invitations: the manage scope; owners are made by owners (never a key).
    from django.core import mail

    team = api("GET", "/api/members", **admin).json()
    assert [m["username"] for m in team["members"]] == ["dev", "olivia"]
    assert team["invitations"] == []
    invited = api("POST", "/api/invitations", {"email": "dev@example.com", "role": "developer"},
                  **admin)  # fmt: skip
    assert invited.status_code == 201 and mail.outbox[-1].to == ["dev@example.com"]
    assert "/invite/" in mail.outbox[-1].body and "token" not in invited.json()
    owner_wanted = {"email": "boss@example.com", "role": "owner"}
    assert api("POST", "/api/invitations", owner_wanted, **admin).status_code == 403
    assert api("POST", "/api/invitations", {"email": "x", "role": "developer"},
               **admin).status_code == 400  # fmt: skip
    assert api("DELETE", f"/api/invitations/{invited.json()['id']}", **admin).status_code == 204
    assert api("DELETE", f"/api/invitations/{invited.json()['id']}", **admin).status_code == 404
    assert api("DELETE", "/api/invitations/99999999999999999999", **admin).status_code == 404
    dev = next(m["id"] for m in team["members"] if m["username"] == "dev")
    changed = api("PATCH", f"/api/members/{dev}", {"role": "viewer"}, **admin)
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert api("DELETE", f"/api/members/{dev}", **admin).status_code == 204
    olivia = next(m["id"] for m in team["members"] if m["username"] == "olivia")
    assert api("PATCH", f"/api/members/{olivia}", {"role": "viewer"}, **admin).status_code == 403
    assert api("DELETE", f"/api/members/{olivia}", **admin).status_code == 403  # the last owner
    assert api("PATCH", f"/api/members/{olivia}", {"role": "boss"}, **admin).status_code == 400
    assert api("GET", "/api/members").status_code == 403

    Tenant.objects.filter(pk=tenant.pk).update(max_deployments_per_hour=1)
    assert api("POST", "/api/workers", {"name": "greeter", "code": GREETER}).status_code == 429
    assert api("DELETE", f"/api/workers/{worker.code}").status_code == 204

    # The log drain endpoint: Vercel's check, a forged delivery and a signed one.
    assert api("GET", "/api/drains/vercel").status_code == 200
    assert api("POST", "/api/drains/vercel", [{"id": "x"}]).status_code == 403
    settings.VERCEL_LOG_DRAIN_SECRET = "drain-secret"
    delivery = json.dumps([{"id": "l1", "deploymentId": "dpl_none", "message": "hi"}])
    signature = hmac.new(b"drain-secret", delivery.encode(), hashlib.sha1).hexdigest()  # noqa: S324
    signed = api("POST", "/api/drains/vercel", raw=delivery, HTTP_X_VERCEL_SIGNATURE=signature)
    assert signed.status_code == 200 and signed.json() == {"stored": 0}  # not one of ours

    # The CLI's sign-in: asked without a key, approved in the portal, collected once.
    from workers import key_requests

    asked = api("POST", "/api/cli/logins", {"client": "functions 0.1 on laptop"})
    assert asked.status_code == 201 and asked.json()["approveUrl"].endswith(asked.json()["code"])
    poll = {"pollToken": asked.json()["pollToken"]}
    assert api("POST", "/api/cli/logins/poll", poll).json()["status"] == "pending"
    assert api("POST", "/api/cli/logins/poll", {"pollToken": "nope"}).status_code == 404
    assert api("POST", "/api/cli/logins", {"client": ""}).status_code == 400
    key_requests.approve(key_requests.pending(asked.json()["code"]), owner, tenant, ["deploy"])
    collected = api("POST", "/api/cli/logins/poll", poll).json()
    assert collected["status"] == "approved" and collected["token"].startswith("wk_")
    assert api("POST", "/api/cli/logins/poll", poll).json() == {
        "status": "collected", "token": None, "tenant": None, "scopes": None
    }  # fmt: skip
    for _ in range(key_requests.PENDING_PER_ADDRESS):
        api("POST", "/api/cli/logins", {"client": "again"})
    assert api("POST", "/api/cli/logins", {"client": "again"}).status_code == 429
    assert api("GET", "/api/workers?name=greeter").json()["workers"] == []  # deleted above
    assert api("GET", "/api/workers?name=Not+A+Name").status_code == 400

    documented = {(m, p) for p, ops in SPEC["paths"].items() for m in ops if m != "parameters"}
    streaming = {("get", "/api/workers/{id}/logs")}  # checked in test_live_logs (SSE)
    assert documented - streaming <= checked, documented - streaming - checked
