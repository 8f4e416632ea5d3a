"""A tenant's key-value namespaces over the API: create, list, empty and remove them (the
`manage` scope), browse their keys and read values (`read`), write and delete values
(`manage`), and bind them to workers by name (ctx.kv.<NAME> in the worker's code, from its
next deployment on). Audited, within the tenant's quotas."""

import base64
import binascii
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.db import IntegrityError
from django.http import HttpResponse
from ninja import Field, Path, Query, Router, Schema, Status

from kv import store
from kv.models import BINDING_PATTERN, Binding, Entry, Namespace
from tenancy.access import Action
from tenancy.audit import record
from tenancy.models import LABEL_PATTERN
from tenancy.quotas import QuotaExceeded, check_room

from .errors import ApiError, require
from .schemas import ErrorOut, Strict
from .workers import tenant_for, worker_for

router = Router(tags=["key-value"])
ERRORS = {frozenset({400, 401, 403, 404}): ErrorOut}
KEY = Query(..., min_length=1, max_length=store.MAX_KEY_CHARS, pattern=r"^[^\x00]+$",
            description="The key (at most 512 characters, no NUL).")  # fmt: skip


class NamespaceOut(Schema):
    id: UUID
    name: str
    boundBy: list[dict[str, str]] = Field(description="[{worker, binding}]: who reaches it.")
    createdAt: datetime
    createdBy: str


class NamespaceList(Schema):
    namespaces: list[NamespaceOut]
    keys: int = Field(description="Keys the tenant holds in all its namespaces.")
    bytes: int = Field(description="Bytes they hold (keys, values, metadata).")


class NamespaceIn(Strict):
    name: str = Field(min_length=1, max_length=40, pattern=LABEL_PATTERN)
    tenant: str | None = Field(None, pattern=LABEL_PATTERN)


class KeyOut(Schema):
    key: str
    size: int
    metadata: Any = Field(None, description="JSON the writer attached, or null.")
    expiresAt: datetime | None
    version: int = Field(description="Grows with every write (for ifVersion).")
    updatedAt: datetime


class KeyList(Schema):
    keys: list[KeyOut]
    cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ValueOut(KeyOut):
    value: str
    encoding: Literal["utf-8", "base64"] = Field(
        description="utf-8 when the value is text, else base64 of its bytes."
    )


class ValueIn(Strict):
    value: str = Field(max_length=1_398_104, description="At most 1 MiB once decoded (413 beyond).")
    encoding: Literal["utf-8", "base64"] = "utf-8"
    ttlSeconds: float | None = Field(None, ge=1, le=10 * 365 * 86400)
    metadata: Any = Field(None, description="Any JSON, at most 1 KB.")
    ifVersion: int | None = Field(
        None, ge=0, description="Write only if the key's version is this now (0: no such key); "
        "else 409 with the version there."
    )  # fmt: skip


class BindingOut(Schema):
    name: str
    namespace: UUID
    namespaceName: str


class BindingList(Schema):
    bindings: list[BindingOut]


class BindingIn(Strict):
    namespace: UUID


def namespace_json(ns: Namespace) -> dict:
    return {
        "id": ns.code, "name": ns.name, "createdAt": ns.created, "createdBy": ns.created_by,
        "boundBy": [{"worker": b.worker.name, "binding": b.name}
                    for b in ns.bindings.select_related("worker")],
    }  # fmt: skip


def key_json(e: Entry) -> dict:
    return {"key": e.key, "size": e.size, "metadata": e.metadata, "expiresAt": e.expires_at,
            "version": e.version, "updatedAt": e.updated}  # fmt: skip


def value_json(e: Entry) -> dict:
    raw = bytes(e.value)
    try:
        text, encoding = raw.decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode(), "base64"
    return {**key_json(e), "value": text, "encoding": encoding}


def namespace_for(request, code: UUID, action: Action, viewing: bool = False) -> Namespace:
    found = Namespace.objects.visible_to(request.principal).select_related("tenant")
    ns = found.filter(code=code).first()
    if ns is None:
        raise ApiError(404, "not_found", "No such namespace.")
    require(request, action, ns, viewing=viewing)
    return ns


@router.get("/kv/namespaces", response={200: NamespaceList, **ERRORS},
            summary="The tenant's key-value namespaces and what it stores")  # fmt: skip
def list_namespaces(request, tenant: str = Query(None, pattern=LABEL_PATTERN, max_length=50)):
    chosen = tenant_for(request, tenant, Action.READ)
    keys, size = store.held(chosen)
    found = Namespace.objects.filter(tenant=chosen)
    return {"namespaces": [namespace_json(ns) for ns in found], "keys": keys, "bytes": size}


@router.post("/kv/namespaces", response={201: NamespaceOut, frozenset({400, 401, 403, 404, 409}): ErrorOut},
             summary="Create a namespace")  # fmt: skip
def create_namespace(request, body: NamespaceIn):
    tenant = tenant_for(request, body.tenant, Action.MANAGE)
    try:
        check_room(tenant, "max_kv_namespaces")
        ns = Namespace.objects.create(
            tenant=tenant, name=body.name, created_by=request.principal.label
        )
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    except IntegrityError as exc:
        raise ApiError(409, "conflict", f"This tenant has a namespace named {body.name}.") from exc
    record(request, tenant, "kv.namespace.create", ns.name)
    return Status(201, namespace_json(ns))


@router.delete("/kv/namespaces/{uuid:id}", response={204: None, frozenset({400, 401, 403, 404, 409}): ErrorOut},
               summary="Remove a namespace and everything in it (unbind it first)")  # fmt: skip
def delete_namespace(request, id: UUID):
    ns = namespace_for(request, id, Action.MANAGE)
    bound = [f"{b.worker.name} ({b.name})" for b in ns.bindings.select_related("worker")]
    if bound:
        raise ApiError(409, "conflict", f"Bound by {', '.join(bound)}: unbind it first.")
    ns.delete()
    record(request, ns.tenant, "kv.namespace.delete", ns.name)
    return HttpResponse(status=204)


@router.post("/kv/namespaces/{uuid:id}/empty", response={200: dict[str, int], **ERRORS},
             summary="Delete every key of a namespace")  # fmt: skip
def empty_namespace(request, id: UUID):
    ns = namespace_for(request, id, Action.MANAGE)
    removed = store.empty(ns)
    record(request, ns.tenant, "kv.namespace.empty", ns.name, removed=removed)
    return {"removed": removed}


@router.get("/kv/namespaces/{uuid:id}/keys", response={200: KeyList, **ERRORS},
            summary="Keys by prefix, a page at a time, without their values")  # fmt: skip
def list_keys(
    request, id: UUID, prefix: str = Query("", max_length=512), cursor: str = Query("", max_length=2048),
    limit: int = Query(100, ge=1, le=1000),
):  # fmt: skip
    ns = namespace_for(request, id, Action.READ)
    try:
        page, after = store.listing(ns, prefix, cursor, limit)
    except store.KvError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    return {"keys": [key_json(e) for e in page], "cursor": after}


@router.get("/kv/namespaces/{uuid:id}/value", response={200: ValueOut, **ERRORS},
            summary="One key's value, metadata, expiry and version")  # fmt: skip
def get_value(request, id: UUID, key: str = KEY):
    ns = namespace_for(request, id, Action.READ)
    found = store.get(ns, key)
    if found is None:
        raise ApiError(404, "not_found", f"No key {key!r} in {ns.name}.")
    return value_json(found)


@router.put("/kv/namespaces/{uuid:id}/value", response={200: ValueOut, frozenset({400, 401, 403, 404, 409, 413}): ErrorOut},
            summary="Write a key (with a time to live, metadata, and a version to compare)")  # fmt: skip
def put_value(request, id: UUID, body: ValueIn, key: str = KEY):
    ns = namespace_for(request, id, Action.MANAGE)
    try:
        raw = (
            base64.b64decode(body.value, validate=True)
            if body.encoding == "base64"
            else body.value.encode()
        )
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", "`value` is not base64.") from exc
    try:
        written = store.put(ns, key, raw, body.ttlSeconds, body.metadata, body.ifVersion)
    except store.KvError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from exc
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    if isinstance(written, store.Conflict):
        raise ApiError(409, "version_conflict", f"{key!r} is at version {written.version}, not "
                       f"{body.ifVersion}; read it again and retry.")  # fmt: skip
    record(request, ns.tenant, "kv.put", f"{ns.name} {key}"[:300])
    return value_json(written)


@router.delete(
    "/kv/namespaces/{uuid:id}/value", response={204: None, **ERRORS}, summary="Delete a key"
)
def delete_value(request, id: UUID, key: str = KEY):
    ns = namespace_for(request, id, Action.MANAGE)
    if not store.delete(ns, key):
        raise ApiError(404, "not_found", f"No key {key!r} in {ns.name}.")
    record(request, ns.tenant, "kv.delete", f"{ns.name} {key}"[:300])
    return HttpResponse(status=204)


BindingName = Path(..., pattern=BINDING_PATTERN, description="A JavaScript name: ctx.kv.<name>.")


@router.get("/workers/{uuid:id}/kv-bindings", response={200: BindingList, **ERRORS},
            summary="The namespaces a worker reaches, by binding name")  # fmt: skip
def list_bindings(request, id: UUID):
    worker = worker_for(request, id, Action.READ)
    found = worker.kv_bindings.select_related("namespace")
    return {"bindings": [{"name": b.name, "namespace": b.namespace.code,
                          "namespaceName": b.namespace.name} for b in found]}  # fmt: skip


@router.put("/workers/{uuid:id}/kv-bindings/{name}", response={200: BindingOut, **ERRORS},
            summary="Bind a namespace of the worker's tenant (from its next deployment on)")  # fmt: skip
def put_binding(request, id: UUID, body: BindingIn, name: str = BindingName):
    worker = worker_for(request, id, Action.MANAGE)
    ns = Namespace.objects.filter(tenant=worker.tenant, code=body.namespace).first()
    if ns is None:  # another tenant's namespace is not there, whatever its id
        raise ApiError(404, "not_found", "No such namespace in this worker's tenant.")
    Binding.objects.update_or_create(worker=worker, name=name, defaults={"namespace": ns})
    record(request, worker.tenant, "kv.bind", f"{worker.name} {name}", namespace=ns.name)
    return {"name": name, "namespace": ns.code, "namespaceName": ns.name}


@router.delete("/workers/{uuid:id}/kv-bindings/{name}", response={204: None, **ERRORS},
               summary="Unbind (from the worker's next deployment on)")  # fmt: skip
def delete_binding(request, id: UUID, name: str = BindingName):
    worker = worker_for(request, id, Action.MANAGE)
    if not worker.kv_bindings.filter(name=name).delete()[0]:
        raise ApiError(404, "not_found", f"{worker.name} has no binding {name}.")
    record(request, worker.tenant, "kv.unbind", f"{worker.name} {name}")
    return HttpResponse(status=204)
