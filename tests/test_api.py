"""The JSON API and API keys: scopes, errors, tenant isolation, promote and roll back."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from deployments.models import Deployment
from releases.production import auto_promote
from workers.api_keys import issue_key
from workers.models import ApiKey, Worker

from .conftest import client_for
from .helpers import GREETER, create_deployment

S = Deployment.Status


def bearer(secret):
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def key(tenant):
    return issue_key(tenant, "ci", ["deploy", "read"])[1]


def ready(deployment):
    deployment.transition(S.QUEUED, S.BUILDING)
    deployment.transition(S.BUILDING, S.READY, functions=["hello"])
    return deployment


def post_json(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def test_deploy_with_a_key_answers_202_with_the_deployment(client, key, tenant):
    response = post_json(
        client, "/api/workers", {"name": "greeter", "code": GREETER}, **bearer(key)
    )
    assert response.status_code == 202
    body = response.json()
    worker = Worker.objects.get(tenant=tenant, name="greeter")
    assert body["id"] == str(worker.code) and body["name"] == "greeter"
    assert body["deployment"]["status"] == "queued"
    assert set(body["deployment"]) >= {"id", "backendId", "url", "status", "errorMessage"}
    # Deploying again makes a new immutable deployment of the same worker.
    again = post_json(
        client, "/api/workers", {"name": "greeter", "code": GREETER + "//2"}, **bearer(key)
    )
    assert again.status_code == 202 and worker.deployments.count() == 2


def test_the_worker_list_comes_a_page_at_a_time(client, key, tenant, other_tenant):
    Worker.objects.bulk_create([Worker(tenant=tenant, name=f"w{n}") for n in range(5)])
    Worker.objects.create(tenant=other_tenant, name="theirs")
    seen, after, pages = [], None, 0
    while True:
        query = {"limit": 2} | ({"after": after} if after is not None else {})
        page = client.get("/api/workers", query, **bearer(key)).json()
        seen += [w["name"] for w in page["workers"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert seen == [f"w{n}" for n in range(5)] and pages == 3
    for bad in ({"limit": 0}, {"limit": 501}, {"after": -1}, {"limit": "many"}):
        refused = client.get("/api/workers", bad, **bearer(key))
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["code"] == "invalid_request"


def test_a_parameter_given_twice_is_refused_not_half_read(client, key, tenant):
    Worker.objects.bulk_create([Worker(tenant=tenant, name=f"w{n}") for n in range(3)])
    for path in ("/api/workers?limit=1&limit=2", "/api/runs?function=a&function="):
        refused = client.get(path, **bearer(key))
        assert refused.status_code == 400, path
        error = refused.json()["error"]
        assert error["code"] == "invalid_request" and "may be given only once" in error["message"]
    assert len(client.get("/api/workers?limit=2", **bearer(key)).json()["workers"]) == 2


def test_a_misspelt_query_parameter_is_refused_not_ignored(client, key, tenant):
    for path, name in (("/api/runs?fucntion=hello", "fucntion"), ("/api/workers?limt=1", "limt"),
                       ("/api/runs?%F0%BC%9C%BA=x", "\U0003c73a")):  # fmt: skip
        refused = client.get(path, **bearer(key))
        assert refused.status_code == 400, path
        error = refused.json()["error"]
        assert error == {"code": "invalid_request",
                         "message": f"Invalid request: `{name}` is not a parameter of this operation."}  # fmt: skip
    assert client.get("/api/runs?function=hello", **bearer(key)).status_code == 200


def test_read_endpoints(client, key, worker, settings):
    first = ready(create_deployment(worker, GREETER))
    auto_promote(first)
    listed = client.get("/api/workers", **bearer(key)).json()["workers"]
    assert [w["name"] for w in listed] == ["greeter"]
    detail = client.get(f"/api/workers/{worker.code}", **bearer(key)).json()
    assert (
        detail["production"]["id"] == str(first.code) and detail["production"]["status"] == "ready"
    )
    deployments = client.get(f"/api/workers/{worker.code}/deployments", **bearer(key)).json()[
        "deployments"
    ]
    assert [d["id"] for d in deployments] == [str(first.code)]
    one = client.get(f"/api/deployments/{first.code}", **bearer(key)).json()
    assert one["functions"] == ["hello"]
    # The limits it runs with: the worker's own, else its tenant's, else the platform's.
    worker.timeout_seconds, worker.tenant.memory_mb = 2.5, 64
    worker.save()
    worker.tenant.save()
    limits = client.get(f"/api/workers/{worker.code}", **bearer(key)).json()["limits"]
    assert limits["timeoutMs"] == 2500 and limits["memoryMb"] == 64
    assert limits["cpuMs"] == settings.RUNTIME_CPU_MS


def test_promote_and_roll_back(client, key, worker):
    old = ready(create_deployment(worker, GREETER))
    new = ready(create_deployment(worker, GREETER + "//new"))
    auto_promote(new)
    url = f"/api/workers/{worker.code}/production"
    response = post_json(client, url, {"id": str(old.code)}, **bearer(key))
    assert response.status_code == 200 and response.json()["production"]["id"] == str(old.code)
    assert response.json()["promotedBy"].startswith("API key ci (wk_")
    worker.refresh_from_db()
    assert worker.production == old
    queued = create_deployment(worker, GREETER + "//queued")
    assert post_json(client, url, {"id": str(queued.code)}, **bearer(key)).status_code == 409
    refused = post_json(client, url, {"id": "not-a-uuid"}, **bearer(key))
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"
    unknown = post_json(client, url, {"id": "7b0c5a3e-0000-4000-8000-000000000000"}, **bearer(key))
    assert unknown.status_code == 404


def test_delete_worker(client, key, worker):
    assert client.delete(f"/api/workers/{worker.code}", **bearer(key)).status_code == 204
    assert not Worker.objects.exists()


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (json.dumps({"name": "x"}).encode(), 400, "invalid_request"),
        (json.dumps({"name": "Bad Name", "code": GREETER}).encode(), 400, "invalid_name"),
        (json.dumps({"name": "a" * 31, "code": GREETER}).encode(), 400, "invalid_name"),
    ],
)
def test_bad_requests_get_clear_json_errors(client, key, body, status, code):
    response = client.post("/api/workers", body, content_type="application/json", **bearer(key))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code and response.json()["error"]["message"]
    assert not Deployment.objects.exists()


def test_too_large_module_is_413(client, key, settings):
    settings.MAX_SOURCE_BYTES = 1000
    response = post_json(client, "/api/workers", {"name": "big", "code": "x" * 1001}, **bearer(key))
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_missing_wrong_and_revoked_keys_are_401(client, tenant):
    key, secret = issue_key(tenant, "old", ["read"])
    assert client.get("/api/workers").status_code == 401
    assert client.get("/api/workers", **bearer("wk_nope_nope")).status_code == 401
    assert client.get("/api/workers", **bearer(secret[:-2] + "xx")).status_code == 401
    assert client.get("/api/workers", **bearer(secret)).status_code == 200
    key.revoked_at = key.created
    key.save()
    assert client.get("/api/workers", **bearer(secret)).status_code == 401


def test_scopes_are_enforced(client, tenant, worker):
    read_only = issue_key(tenant, "reader", ["read"])[1]
    deploy_only = issue_key(tenant, "deployer", ["deploy"])[1]
    assert (
        post_json(
            client, "/api/workers", {"name": "x", "code": GREETER}, **bearer(read_only)
        ).status_code
        == 403
    )
    assert client.delete(f"/api/workers/{worker.code}", **bearer(read_only)).status_code == 403
    assert client.get(f"/api/workers/{worker.code}", **bearer(deploy_only)).status_code == 403
    # A key without the read scope is refused, not shown an empty list.
    listed = client.get("/api/workers", **bearer(deploy_only))
    assert listed.status_code == 403 and listed.json()["error"]["code"] == "forbidden"
    assert (
        client.get(f"/api/workers/{worker.code}/logs/poll", **bearer(deploy_only)).status_code
        == 403
    )
    assert (
        client.get(f"/api/workers/{worker.code}/logs/poll", **bearer(read_only)).status_code == 200
    )
    assert Worker.objects.count() == 1


def test_another_tenants_key_gets_404_on_every_url(client, worker, other_tenant):
    deployment = ready(create_deployment(worker, GREETER))
    outsider_key = issue_key(other_tenant, "theirs", ["deploy", "read", "invoke"])[1]
    urls = [
        ("get", f"/api/workers/{worker.code}"),
        ("delete", f"/api/workers/{worker.code}"),
        ("get", f"/api/workers/{worker.code}/deployments"),
        ("post", f"/api/workers/{worker.code}/production"),
        ("get", f"/api/deployments/{deployment.code}"),
        ("get", f"/api/workers/{worker.code}/logs/poll"),
    ]
    body = json.dumps({"id": str(deployment.code)})  # a valid body: only the scope refuses
    for method, url in urls:
        sent = {} if method == "get" else {"data": body, "content_type": "application/json"}
        response = getattr(client, method)(url, **sent, **bearer(outsider_key))
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/workers", **bearer(outsider_key)).json() == {
        "workers": [],
        "next": None,
    }
    # Deploying "into" the other tenant by slug finds nothing either.
    response = post_json(
        client,
        "/api/workers",
        {"tenant": "acme", "name": "x", "code": GREETER},
        **bearer(outsider_key),
    )
    assert response.status_code == 404
    assert Worker.objects.count() == 1 and Deployment.objects.count() == 1


def test_session_callers_need_csrf_for_writes(owner, tenant):
    client = client_for(lambda: Client(enforce_csrf_checks=True), owner)
    assert client.get("/api/workers").status_code == 200
    response = post_json(client, "/api/workers", {"name": "x", "code": GREETER})
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"


def test_viewer_session_may_read_but_not_deploy(viewer, worker):
    client = client_for(Client, viewer)
    assert client.get(f"/api/workers/{worker.code}").status_code == 200
    assert client.delete(f"/api/workers/{worker.code}").status_code == 403


# --- the key pages ------------------------------------------------------------------------


def test_admin_creates_a_key_whose_secret_is_shown_once_and_stored_hashed(owner_client, tenant):
    response = owner_client.post(
        reverse("api-keys"), {"name": "deploy bot", "scopes": ["deploy", "read"]}
    )
    page = response.content.decode()
    key = ApiKey.objects.get(tenant=tenant)
    secret = page.split('<pre class="code copy">')[1].split("</pre>")[0]
    assert secret.startswith(f"wk_{key.prefix}_") and len(secret) > 40
    assert secret not in key.secret_hash and secret not in json.dumps(key.scopes)
    later = owner_client.get(reverse("api-keys")).content.decode()
    assert secret not in later and f"wk_{key.prefix}_" in later
    # The key works and records when it was last used.
    assert Client().get("/api/workers", **bearer(secret)).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_revoked_key_stops_working(owner_client, tenant):
    key, secret = issue_key(tenant, "temp", ["read"])
    owner_client.post(reverse("revoke-key", args=[key.pk]))
    assert Client().get("/api/workers", **bearer(secret)).status_code == 401


def test_only_owners_and_admins_manage_keys(client, developer, outsider, tenant):
    key, _ = issue_key(tenant, "ci", ["read"])
    client.force_login(developer)
    assert client.get(reverse("api-keys")).status_code == 403
    assert client.post(reverse("revoke-key", args=[key.pk])).status_code == 403
    client.force_login(outsider)
    assert client.post(reverse("revoke-key", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert key.is_active
