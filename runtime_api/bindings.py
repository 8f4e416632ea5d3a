"""What a deployment's code reaches through its ctx besides its own code: the key-value
namespaces bound to it (by the bindings kept in its snapshot) and runs it enqueues. A runtime
host asks on the deployment's behalf (with RUNTIME_TOKEN); a generated (Vercel) deployment asks
with its own credential. Either way the deployment names a binding, never a namespace: a
name it was not deployed with reaches nothing, and no id reaches another tenant's data.

One operation per request, as JSON:
  {"binding", "op": "get", "key"}                 -> {"found": false} or
                                                     {"found": true, "value" (base64),
                                                      "metadata", "version", "expiresAt" (ms)}
  {"binding", "op": "put", "key", "value" (base64), "ttl"?, "metadata"?, "ifVersion"?}
                                                  -> {"ok": true, "version"}, or {"ok": false,
                                                     "version"} when ifVersion did not hold
  {"binding", "op": "delete", "key"}              -> {"deleted": bool}
  {"binding", "op": "list", "prefix"?, "cursor"?, "limit"?}
                                                  -> {"keys": [{key, metadata, version,
                                                     expiresAt}], "cursor"}
Enqueue: {"function", "payload" (JSON text), "worker"?, "delay"?, "idempotencyKey"?} -> 202
with the run's id. Errors are {"error": {code, message}} with the contract's codes."""

import base64
import binascii
import json
import logging
import time
import uuid
from typing import Any

import redis
from django.conf import settings
from django.http import JsonResponse

from deployments.announce import redis_client
from deployments.models import Deployment
from kv import store
from kv.models import Namespace
from releases.addresses import SUSPENDED
from runs import steps as journal
from runs.lifecycle import accept
from runs.models import Run
from telemetry.usage import charge_operations
from tenancy.access import acts
from tenancy.models import AuditEvent, Tenant
from tenancy.quotas import QuotaExceeded
from workers.models import Worker

log = logging.getLogger(__name__)
LONGEST_DELAY = 30 * 86400  # seconds a run may be enqueued ahead


def error(status: int, code: str, message: str, **headers: str) -> JsonResponse:
    answer = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in headers.items():
        answer[name] = value
    return answer


def over_minute(tenant: Tenant, counter: str, quota: str) -> int | None:
    """Counts one more of the tenant's `counter` this minute; the seconds until the minute
    turns when that is over its quota, else None. Counted in Redis, across every process of
    the control plane; while Redis cannot say, not counted (as the runtime does)."""
    now = time.time()
    minute = int(now // 60)
    # Named by the platform's database too: platforms (or test runs) sharing one Redis do
    # not count each other's tenants.
    key = f"{counter}:{settings.DATABASES['default']['NAME']}:{tenant.pk}:{minute}"
    try:
        pipe = redis_client().pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        used = int(pipe.execute()[0])
    except redis.RedisError as exc:
        log.warning("per-minute quota %s not counted: %s", counter, exc)
        return None
    if used > tenant.quota(quota):
        return max(1, int((minute + 1) * 60 - now))
    return None


def parsed(raw: bytes) -> dict[str, Any] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# Every key-value operation of a worker's code comes here, so what it needs besides the entry
# is remembered in this process for a moment: a deployment's bindings never change; a tenant's
# status and quotas, and whether a namespace still exists, are at most this old.
FRESH_SECONDS = 2.0
_seen: dict[tuple[str, Any], tuple[float, Any]] = {}


def remembered(kind: str, key: Any, load):
    now = time.monotonic()
    found = _seen.get((kind, key))
    if found is not None and found[0] > now:
        return found[1]
    value = load()
    if len(_seen) > 10_000:
        _seen.clear()
    _seen[(kind, key)] = (now + FRESH_SECONDS, value)
    return value


def tenant_of(deployment: Deployment) -> Tenant:
    return remembered(
        "tenant", deployment.tenant_id, lambda: Tenant.objects.get(pk=deployment.tenant_id)
    )


def bound_namespace(deployment: Deployment, binding: object) -> Namespace | None:
    """The namespace `binding` named when the deployment was made, if it still exists."""
    code = (deployment.kv_bindings or {}).get(binding) if isinstance(binding, str) else None
    if code is None:
        return None
    pk = remembered(
        "namespace", (code, deployment.tenant_id),
        lambda: Namespace.objects.filter(code=code, tenant_id=deployment.tenant_id)
        .values_list("pk", flat=True).first(),
    )  # fmt: skip
    return None if pk is None else Namespace(pk=pk, code=code, tenant=tenant_of(deployment))


def kv_operation(deployment: Deployment, raw: bytes, count: bool = False) -> JsonResponse:
    """The operation's answer; `count`: add it to the tenant's usage when it succeeds."""
    body = parsed(raw)
    if body is None:
        return error(400, "invalid_json", "Expected a JSON object.")
    tenant = tenant_of(deployment)
    if not acts(tenant):
        return error(403, "tenant_suspended", SUSPENDED)
    namespace = bound_namespace(deployment, body.get("binding"))
    if namespace is None:
        return error(
            404, "kv_binding_not_found",
            f"This deployment has no key-value binding named {str(body.get('binding'))[:64]!r}: "
            "bind a namespace to the worker, then deploy again.",
        )  # fmt: skip
    wait = over_minute(tenant, "kvops", "max_kv_operations_per_minute")
    if wait is not None:
        return error(
            429, "rate_limited",
            f"This tenant's key-value operations quota ({tenant.quota('max_kv_operations_per_minute')} "
            f"a minute) is used up; retry in {wait} s.", **{"Retry-After": str(wait)},
        )  # fmt: skip
    try:
        answer = JsonResponse(perform(namespace, body))
    except store.KvError as exc:
        return error(exc.status, exc.code, str(exc))
    except QuotaExceeded as exc:
        return error(exc.status, "quota_exceeded", exc.message)
    except (TypeError, ValueError, binascii.Error) as exc:
        return error(
            400,
            "invalid_request",
            f"This operation is not one of get, put, delete and list as described: {exc}",
        )
    if count:
        writing = body.get("op") in ("put", "delete")
        charge_operations(deployment.tenant_id, reads=int(not writing), writes=int(writing))
    return answer


def millis(when) -> int | None:
    return int(when.timestamp() * 1000) if when is not None else None


def perform(namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
    op = body.get("op")
    if op == "list":
        limit = body.get("limit", 100)
        if not isinstance(limit, int):
            raise TypeError("limit is a number")
        page, cursor = store.listing(
            namespace, prefix=str(body.get("prefix") or ""), cursor=str(body.get("cursor") or ""),
            limit=limit,
        )  # fmt: skip
        keys = [{"key": e.key, "metadata": e.metadata, "version": e.version,
                 "expiresAt": millis(e.expires_at)} for e in page]  # fmt: skip
        return {"keys": keys, "cursor": cursor}
    key = body.get("key")
    if not isinstance(key, str):
        raise TypeError("key is a string")
    if op == "get":
        entry = store.get(namespace, key)
        if entry is None:
            return {"found": False}
        return {
            "found": True, "value": base64.b64encode(bytes(entry.value)).decode(),
            "metadata": entry.metadata, "version": entry.version,
            "expiresAt": millis(entry.expires_at),
        }  # fmt: skip
    if op == "delete":
        return {"deleted": store.delete(namespace, key)}
    if op != "put":
        raise ValueError(f"unknown op {str(op)[:20]!r}")
    value = body.get("value")
    ttl, if_version = body.get("ttl"), body.get("ifVersion")
    if not isinstance(value, str):
        raise TypeError("value is base64 text")
    if ttl is not None and not isinstance(ttl, int | float):
        raise TypeError("ttl is a number of seconds")
    if if_version is not None and (not isinstance(if_version, int) or if_version < 0):
        raise TypeError("ifVersion is a version number (0: no such key)")
    written = store.put(
        namespace, key, base64.b64decode(value, validate=True), ttl_seconds=ttl,
        metadata=body.get("metadata"), if_version=if_version,
    )  # fmt: skip
    if isinstance(written, store.Conflict):
        return {"ok": False, "version": written.version}
    return {"ok": True, "version": written.version, "expiresAt": millis(written.expires_at)}


def enqueue(deployment: Deployment, raw: bytes) -> JsonResponse:
    """A durable run of a function of this deployment, or of another worker's production
    (same tenant), after `delay` seconds; the same idempotencyKey again gives the same run."""
    body = parsed(raw)
    if body is None:
        return error(400, "invalid_json", "Expected a JSON object.")
    function, payload = body.get("function"), body.get("payload", "null")
    worker_name, delay = body.get("worker"), body.get("delay", 0)
    key = body.get("idempotencyKey") or ""
    if (
        not isinstance(function, str) or not isinstance(payload, str) or not isinstance(key, str)
        or not isinstance(delay, int | float) or not 0 <= delay <= LONGEST_DELAY
        or (worker_name is not None and not isinstance(worker_name, str))
    ):  # fmt: skip
        return error(
            400, "invalid_request",
            "Expected function, payload (JSON text), and optionally worker, delay (seconds, up "
            f"to {LONGEST_DELAY // 86400} days) and idempotencyKey.",
        )  # fmt: skip
    if len(key) > 255:
        return error(400, "invalid_request", "An idempotency key holds at most 255 characters.")
    tenant = deployment.tenant
    if not acts(tenant):
        return error(403, "tenant_suspended", SUSPENDED)
    target = deployment
    if worker_name and worker_name != deployment.worker.name:
        other = Worker.objects.filter(tenant_id=deployment.tenant_id, name=worker_name).first()
        if other is None or other.production is None:
            return error(
                404, "deployment_not_found",
                f"This tenant has no worker named {worker_name[:64]!r} with a production deployment.",
            )  # fmt: skip
        target = other.production
    if function not in target.functions:
        return error(
            404, "function_not_found", f'{target.worker.name} has no function "{function[:100]}".'
        )
    if key and Run.objects.filter(worker=target.worker, idempotency_key=key).exists():
        pass  # the run it started then: not counted again
    else:
        wait = over_minute(tenant, "enq", "max_enqueues_per_minute")
        if wait is not None:
            return error(
                429, "rate_limited",
                f"This tenant's quota of runs enqueued by code ({tenant.quota('max_enqueues_per_minute')} "
                f"a minute) is used up; retry in {wait} s.", **{"Retry-After": str(wait)},
            )  # fmt: skip
    try:
        run, created = accept(
            target, function, payload, trigger=Run.Trigger.ENQUEUE, idempotency_key=key,
            delay=float(delay),
        )  # fmt: skip
    except QuotaExceeded as exc:
        return error(exc.status, "quota_exceeded", exc.message)
    return JsonResponse(
        {"runId": str(run.code), "status": run.status, "created": created}, status=202
    )


def steps(deployment: Deployment, raw: bytes) -> JsonResponse:
    """A step operation of a run's code (runs/steps.py), for a run of this deployment that is
    running now."""
    body = parsed(raw)
    if body is None:
        return error(400, "invalid_json", "Expected a JSON object.")
    try:
        run_code = uuid.UUID(str(body.get("run")))
    except ValueError:
        return error(404, "run_not_found", "No such run.")
    run = (
        Run.objects.only("code", "status", "tenant_id", "deployment_id")
        .filter(code=run_code, deployment_id=deployment.pk)
        .first()
    )
    if run is None:
        return error(404, "run_not_found", "No such run.")
    if not acts(tenant_of(deployment)):
        return error(403, "tenant_suspended", SUSPENDED)
    if run.status != Run.Status.RUNNING:
        return error(
            409,
            "run_not_running",
            f"This run is {run.status}: its steps change only while it runs.",
        )
    try:
        return JsonResponse(journal.perform(run, body, request_id=str(body.get("request") or "")))
    except journal.StepError as exc:
        return error(exc.status, exc.code, str(exc))


def event(deployment: Deployment, raw: bytes) -> JsonResponse:
    """ctx.sendEvent of a run's or a call's code: to one run of its tenant (`run`), or to every
    run of a worker of its tenant (`worker`, by name) waiting for it. Audited as the worker's."""
    body = parsed(raw)
    if body is None:
        return error(400, "invalid_json", "Expected a JSON object.")
    name, payload = body.get("name"), body.get("payload", "null")
    if not isinstance(name, str) or not isinstance(payload, str):
        return error(
            400, "invalid_request", "Expected an event's name and its payload (JSON text)."
        )
    try:
        journal.check_event(name, payload)
    except journal.StepError as exc:
        return error(exc.status, exc.code, str(exc))
    tenant = tenant_of(deployment)
    if not acts(tenant):
        return error(403, "tenant_suspended", SUSPENDED)
    sender = Worker.objects.only("name").get(pk=deployment.worker_id).name
    if body.get("run"):
        try:
            code = uuid.UUID(str(body["run"]))
        except ValueError:
            return error(404, "run_not_found", "No such run.")
        run = Run.objects.filter(code=code, tenant_id=deployment.tenant_id).first()
        if run is None:
            return error(404, "run_not_found", "No such run.")
        runs = [run] if run.in_flight else []
    else:
        target = Worker.objects.filter(
            tenant_id=deployment.tenant_id, name=str(body.get("worker") or sender)
        ).first()
        if target is None:
            return error(
                404,
                "not_found",
                f"This tenant has no worker named {str(body.get('worker'))[:64]!r}.",
            )
        runs = journal.waiting_runs(target.pk, name, payload)
    for run in runs:
        journal.send_event(run, name, payload, f"worker {sender}")
    AuditEvent.objects.create(
        tenant=tenant, actor_label=f"worker {sender}", action="run.event", target=sender,
        details={"event": name, "runs": [str(r.code) for r in runs]},
    )  # fmt: skip
    return JsonResponse({"name": name, "delivered": [str(r.code) for r in runs]}, status=202)
