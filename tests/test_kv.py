"""Key-value namespaces: created, bound to workers (kept by each deployment, shown in the
diff), written and read through the API with time to live, metadata and compare-and-set,
listed by prefix a page at a time, bounded (keys, values, metadata, quotas), and never
reachable or bindable by another tenant, whatever id is tried."""

import base64
from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from deployments.deploy import deploy
from deployments.diff import compare
from kv import store
from kv.models import Entry, Namespace
from tenancy.models import AuditEvent
from workers.api_keys import issue_key

from .helpers import GREETER

J = "application/json"


def api_for(tenant, scopes=("manage", "read")):
    return Client(HTTP_AUTHORIZATION=f"Bearer {issue_key(tenant, 'ops', list(scopes))[1]}")


def test_a_namespace_is_written_read_listed_and_emptied(tenant, settings):
    api = api_for(tenant)
    made = api.post("/api/kv/namespaces", {"name": "sessions"}, content_type=J)
    assert made.status_code == 201, made.content
    ns = f"/api/kv/namespaces/{made.json()['id']}"
    put = api.put(f"{ns}/value?key=user/1", {"value": '{"n": 1}', "metadata": {"by": "ci"},
                  "ttlSeconds": 60}, content_type=J)  # fmt: skip
    assert put.status_code == 200 and put.json()["version"] == 1
    got = api.get(f"{ns}/value", {"key": "user/1"}).json()
    assert (
        got["value"] == '{"n": 1}'
        and got["encoding"] == "utf-8"
        and got["metadata"] == {"by": "ci"}
    )
    assert got["expiresAt"] is not None
    raw = bytes([0, 255, 1])
    api.put(f"{ns}/value?key=blob", {"value": base64.b64encode(raw).decode(), "encoding": "base64"},
            content_type=J)  # fmt: skip
    assert base64.b64decode(api.get(f"{ns}/value", {"key": "blob"}).json()["value"]) == raw
    for n in range(2, 6):
        api.put(f"{ns}/value?key=user/{n}", {"value": str(n)}, content_type=J)
    first = api.get(f"{ns}/keys", {"prefix": "user/", "limit": 3}).json()
    assert [k["key"] for k in first["keys"]] == ["user/1", "user/2", "user/3"]
    rest = api.get(f"{ns}/keys", {"prefix": "user/", "cursor": first["cursor"]}).json()
    assert [k["key"] for k in rest["keys"]] == ["user/4", "user/5"] and rest["cursor"] is None
    assert api.get(f"{ns}/keys", {"cursor": "not a cursor!"}).status_code == 400
    # Expired: gone for readers at once.
    Entry.objects.filter(key="user/1").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get(f"{ns}/value", {"key": "user/1"}).status_code == 404
    assert store.sweep() == 1
    assert api.delete(f"{ns}/value?key=user/2").status_code == 204
    assert api.delete(f"{ns}/value?key=user/2").status_code == 404
    assert api.post(f"{ns}/empty").json() == {"removed": 4}
    listed = api.get("/api/kv/namespaces").json()
    assert listed["keys"] == 0 and [n["name"] for n in listed["namespaces"]] == ["sessions"]
    assert api.delete(ns).status_code == 204
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"kv.namespace.create", "kv.put", "kv.delete", "kv.namespace.empty",
            "kv.namespace.delete"} <= actions  # fmt: skip


def test_compare_and_set_refuses_a_stale_version_and_says_which_is_there(tenant):
    ns = Namespace.objects.create(tenant=tenant, name="counters")
    api = api_for(tenant)
    url = f"/api/kv/namespaces/{ns.code}/value?key=hits"
    assert api.put(url, {"value": "0", "ifVersion": 0}, content_type=J).json()["version"] == 1
    taken = api.put(url, {"value": "0", "ifVersion": 0}, content_type=J)  # created meanwhile
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "version_conflict"
    # Two writers read version 1; one wins, the other is told and retries on version 2.
    assert api.put(url, {"value": "1", "ifVersion": 1}, content_type=J).status_code == 200
    late = api.put(url, {"value": "1", "ifVersion": 1}, content_type=J)
    assert late.status_code == 409 and "at version 2" in late.json()["error"]["message"]
    assert api.put(url, {"value": "2", "ifVersion": 2}, content_type=J).json()["value"] == "2"
    # A version asked of a key never stored: refused, and nothing is made.
    missing = f"/api/kv/namespaces/{ns.code}/value?key=never"
    absent = api.put(missing, {"value": "x", "ifVersion": 3}, content_type=J)
    assert absent.status_code == 409 and "at version 0" in absent.json()["error"]["message"]
    assert api.get(missing).status_code == 404
    # An expired key is no key: version 0 takes it, and its old version is refused.
    Entry.objects.filter(key="hits").update(expires_at=timezone.now() - timedelta(seconds=1))
    stale = api.put(url, {"value": "9", "ifVersion": 3}, content_type=J)
    assert stale.status_code == 409 and "at version 0" in stale.json()["error"]["message"]
    retaken = api.put(url, {"value": "new", "ifVersion": 0}, content_type=J)
    assert retaken.status_code == 200 and retaken.json()["expiresAt"] is None
    assert api.get(url).json()["value"] == "new"


def test_values_keys_metadata_and_quotas_are_bounded(tenant, settings):
    ns = Namespace.objects.create(tenant=tenant, name="big")
    api = api_for(tenant)
    url = f"/api/kv/namespaces/{ns.code}/value"
    huge = api.put(f"{url}?key=x", {"value": "x" * (1024 * 1024 + 1)}, content_type=J)
    assert huge.status_code == 413 and "at most 1048576 bytes" in huge.json()["error"]["message"]
    assert api.put(f"{url}?key={'k' * 513}", {"value": "x"}, content_type=J).status_code == 400
    meta = api.put(f"{url}?key=m", {"value": "x", "metadata": {"m": "y" * 2000}}, content_type=J)
    assert meta.status_code == 400 and "1024 bytes" in meta.json()["error"]["message"]
    settings.QUOTA_MAX_KV_KEYS = 2
    for key in ("a", "b"):
        assert api.put(f"{url}?key={key}", {"value": "1"}, content_type=J).status_code == 200
    assert api.put(f"{url}?key=a", {"value": "2"}, content_type=J).status_code == 200  # same key
    over = api.put(f"{url}?key=c", {"value": "1"}, content_type=J)
    assert over.status_code == 409 and "quota of 2 stored keys" in over.json()["error"]["message"]
    settings.QUOTA_MAX_KV_KEYS, settings.QUOTA_MAX_KV_BYTES = 100, 10
    bytes_over = api.put(f"{url}?key=d", {"value": "x" * 20}, content_type=J)
    assert bytes_over.status_code == 409 and "bytes stored" in bytes_over.json()["error"]["message"]
    settings.QUOTA_MAX_KV_NAMESPACES = 1
    assert api.post("/api/kv/namespaces", {"name": "more"}, content_type=J).status_code == 409


def test_bindings_are_kept_by_each_deployment_and_shown_in_the_diff(tenant, worker, owner_client):
    sessions = Namespace.objects.create(tenant=tenant, name="sessions")
    cache = Namespace.objects.create(tenant=tenant, name="cache")
    api = api_for(tenant)
    bound = api.put(f"/api/workers/{worker.code}/kv-bindings/SESSIONS",
                    {"namespace": str(sessions.code)}, content_type=J)  # fmt: skip
    assert bound.status_code == 200 and bound.json()["namespaceName"] == "sessions"
    first = deploy(worker, GREETER)
    api.put(f"/api/workers/{worker.code}/kv-bindings/SESSIONS", {"namespace": str(cache.code)},
            content_type=J)  # fmt: skip
    second = deploy(worker, GREETER)
    assert first.kv_bindings == {"SESSIONS": str(sessions.code)}
    assert compare(first, second).bindings == [
        {"name": "SESSIONS", "old": "sessions", "new": "cache"}
    ]
    page = owner_client.get(reverse("deployment-diff", args=[second.code]) + f"?from={first.code}")
    assert "ctx.kv.SESSIONS" in page.content.decode()
    listed = api.get(f"/api/workers/{worker.code}/kv-bindings").json()["bindings"]
    assert [(b["name"], b["namespaceName"]) for b in listed] == [("SESSIONS", "cache")]
    in_use = api.delete(f"/api/kv/namespaces/{cache.code}")
    assert in_use.status_code == 409 and "greeter (SESSIONS)" in in_use.json()["error"]["message"]
    assert api.delete(f"/api/workers/{worker.code}/kv-bindings/SESSIONS").status_code == 204
    assert api.delete(f"/api/kv/namespaces/{cache.code}").status_code == 204


def test_another_tenants_namespace_is_never_reached_or_bound(tenant, other_tenant, worker):
    theirs = Namespace.objects.create(tenant=other_tenant, name="secrets")
    store.put(theirs, "k", b"v")
    api = api_for(tenant)
    for method, path in [
        ("get", f"/api/kv/namespaces/{theirs.code}/keys"),
        ("get", f"/api/kv/namespaces/{theirs.code}/value?key=k"),
        ("put", f"/api/kv/namespaces/{theirs.code}/value?key=k"),
        ("delete", f"/api/kv/namespaces/{theirs.code}/value?key=k"),
        ("post", f"/api/kv/namespaces/{theirs.code}/empty"),
        ("delete", f"/api/kv/namespaces/{theirs.code}"),
    ]:
        if method == "get":
            answer = api.get(path)
        else:
            answer = getattr(api, method)(path, {"value": "x"}, content_type=J)
        assert answer.status_code == 404, (method, path, answer.content)
    bind = api.put(f"/api/workers/{worker.code}/kv-bindings/X", {"namespace": str(theirs.code)},
                   content_type=J)  # fmt: skip
    assert bind.status_code == 404 and not worker.kv_bindings.exists()
    assert bytes(store.get(theirs, "k").value) == b"v"
    reader = api_for(tenant, ["read"])
    mine = Namespace.objects.create(tenant=tenant, name="mine")
    assert reader.get(f"/api/kv/namespaces/{mine.code}/keys").status_code == 200
    assert reader.put(f"/api/kv/namespaces/{mine.code}/value?key=k", {"value": "x"},
                      content_type=J).status_code == 403  # fmt: skip


def test_the_portal_creates_browses_writes_binds_and_empties_a_namespace(
    owner, viewer, outsider, tenant, worker
):
    from .conftest import client_for

    manager = client_for(Client, owner)
    made = manager.post(reverse("kv"), {"name": "sessions"})
    ns = Namespace.objects.get(tenant=tenant)
    assert made.status_code == 302 and made["Location"] == reverse("kv-namespace", args=[ns.code])
    bad = manager.post(reverse("kv"), {"name": "Not a name"})
    assert bad.status_code == 400 and "Not a name" in bad.content.decode()
    act = lambda name, data: manager.post(reverse("kv-act", args=[ns.code, name]), data)  # noqa: E731
    act("put", {"key": "user/1", "value": "Ann", "ttl": "3600"})
    act("put", {"key": "other", "value": "x"})
    act("bind", {"worker": "greeter", "name": "SESSIONS"})
    page = client_for(Client, viewer).get(reverse("kv-namespace", args=[ns.code]) + "?prefix=user/")
    text = page.content.decode()
    assert page.status_code == 200 and "user/1" in text and "Ann" in text and "other" not in text
    assert "ctx.kv.SESSIONS" in text and "Write a key" not in text  # a viewer reads only
    refused = client_for(Client, viewer).post(reverse("kv-act", args=[ns.code, "empty"]))
    assert refused.status_code == 403 and ns.entries.count() == 2
    in_use = act("delete", {})
    assert "unbind it first" in manager.get(in_use["Location"]).content.decode()
    stranger = client_for(Client, outsider)
    assert stranger.get(reverse("kv-namespace", args=[ns.code])).status_code == 404
    for name in ("put", "delete-key", "empty", "delete", "bind", "unbind"):
        assert (
            stranger.post(reverse("kv-act", args=[ns.code, name]), {"key": "user/1"}).status_code
            == 404
        )
    listed = reverse("kv-namespace", args=[ns.code])
    assert listed in manager.get(reverse("kv")).content.decode()
    assert listed not in stranger.get(reverse("kv")).content.decode()
    act("empty", {})
    assert not ns.entries.exists()
