"""The internal API the runtime hosts call (learn deployments, fetch artifacts, check keys,
ingest, follow announcements), and the ingest generated deployments push to. Only callers
holding RUNTIME_TOKEN (or a deployment's own ingest token) get in; others see a 404."""

import hmac
import json
import logging

import redis
from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from deployments.announce import announcements
from deployments.config import runtime_config, worker_limits
from deployments.generator import ingest_token, invoke_secret
from deployments.models import Artifact, Deployment
from releases.addresses import SUSPENDED, NotServed, resolve, served_through
from runs.lifecycle import accept
from telemetry.ingest import store_runtime_batch
from telemetry.usage import charge_cpu
from tenancy.access import acts
from tenancy.models import Tenant
from tenancy.quotas import QuotaExceeded, told_calls_refused
from workers.addresses import from_vercel_alias
from workers.domains import may_have_certificate, serves
from workers.invocation_secrets import active, digest
from workers.models import ApiKey

from . import bindings, leases

log = logging.getLogger(__name__)


def bearer_matches(request, secret: str) -> bool:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(given) and hmac.compare_digest(given, secret)


def runtime_token_ok(request) -> bool:
    return bearer_matches(request, settings.RUNTIME_TOKEN)


def runtime_only(view):
    """Only callers holding RUNTIME_TOKEN get in; everyone else sees a 404."""

    def wrapped(request, *args, **kwargs):
        if not runtime_token_ok(request):
            return not_found("not_found", "Not found.")
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapped)


def not_found(code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=404)


def deployment_config(deployment: Deployment, alias: bool, have: str = "") -> dict:
    config = {**runtime_config(deployment), "alias": alias}
    if have != deployment.artifact_id:
        # The code comes along unless the host has it already: a cold start is one request.
        config["code"] = deployment.artifact.content
    return config


@runtime_only
@require_GET
def resolve_host(request, host: str):
    """A deployment host (name--id--tenant) or a worker's production host (name--tenant).
    With ?preload=1, also a deployment about to be ready, for a host to load, not serve."""
    generation = request.GET.get("generation", "")
    answer = resolve(
        host,
        int(generation) if generation.isdigit() else None,
        request.GET.get("tenant", ""),
        preloading=request.GET.get("preload") == "1",
    )
    if isinstance(answer, NotServed):
        return not_found(answer.code, answer.message)
    config = deployment_config(answer.deployment, answer.alias, request.GET.get("have", ""))
    if answer.alias:
        config["generation"] = answer.generation
        if answer.canary is not None and answer.percent:
            config["canary"] = {"host": answer.canary.host, "percent": answer.percent}
    return JsonResponse(config)


@runtime_only
@require_GET
def artifact(request, sha256: str):
    found = Artifact.objects.filter(sha256=sha256).first()
    if found is None:
        return not_found("artifact_not_found", "No such artifact.")
    return HttpResponse(found.content, content_type="text/javascript")


@runtime_only
@require_POST
def ingest(request):
    """Store invocations and log lines; idempotent, so a re-sent batch adds nothing."""
    return store_batch(request)


def store_batch(request, only: Deployment | None = None) -> JsonResponse:
    """The batch in the body, stored; with `only`, every item is put on that deployment,
    whatever the body says."""
    try:
        invocations, lines = store_runtime_batch(request.body, only)
    except (ValueError, AttributeError, TypeError, KeyError) as exc:
        message = f'Bad batch: expected {{"invocations": [...], "logs": [...]}} as JSON ({exc}).'
        return JsonResponse({"error": {"code": "invalid_batch", "message": message}}, status=400)
    return JsonResponse({"invocations": invocations, "logs": lines})


@runtime_only
@require_POST
def usage(request):
    """A host's report of the CPU its tenants' sandboxes used, the key-value operations their
    code made, and the tenants it refused for their invocations-per-minute quota: {"id",
    "cpu": {tenant: ms}, "kv": {tenant: [reads, writes]}, "limited": [tenant]}, counted once
    per id."""
    try:
        body = json.loads(request.body)
        charges = {int(tenant): float(ms) for tenant, ms in body["cpu"].items()}
        operations = {
            int(tenant): (int(reads), int(writes))
            for tenant, (reads, writes) in (body.get("kv") or {}).items()
        }
        limited = {int(tenant) for tenant in body.get("limited") or []}
        report_id = str(body["id"])
    except (ValueError, KeyError, TypeError, AttributeError):
        message = 'Bad report: expected {"id": "...", "cpu": {"<tenant>": <ms>}, "limited": []}.'
        return JsonResponse({"error": {"code": "invalid_batch", "message": message}}, status=400)
    named = charges.keys() | operations.keys() | limited
    known = set(Tenant.objects.filter(pk__in=named).values_list("pk", flat=True))
    counted = charge_cpu(
        report_id,
        {t: ms for t, ms in charges.items() if t in known and ms > 0},
        operations={t: ops for t, ops in operations.items() if t in known and sum(ops) > 0},
    )
    if counted:
        for tenant in Tenant.objects.filter(pk__in=limited & known):
            told_calls_refused(tenant)
    return JsonResponse({"counted": counted})


@runtime_only
@require_GET
def domain_routes(request, hostname: str):
    """What a tenant's verified domain serves: {"portal": bool, "routes": [{"prefix",
    "host"}]}, longest prefix first; 404 for a name that is not one (or whose tenant is
    suspended)."""
    found = serves(hostname)
    if found is None:
        return not_found("not_found", "No domain is served at this name.")
    return JsonResponse({"hostname": hostname.lower(), **found})


@csrf_exempt
@require_GET
def edge_ask(request):
    """The edge's question before it gets a certificate for a name (Caddy's on-demand TLS
    `ask`): 200 for a verified domain or one of the platform's own names, 404 otherwise. It
    reveals only whether a name is served, as a TLS handshake would."""
    name = request.GET.get("domain", "")
    if not name or len(name) > 253:
        return JsonResponse({"error": {"code": "invalid_request", "message": "?domain= is needed."}}, status=400)  # fmt: skip
    if may_have_certificate(name):
        return JsonResponse({"domain": name.lower(), "allowed": True})
    return not_found("not_found", "No certificate for this name.")


@runtime_only
@require_GET
def api_key(request, prefix: str):
    """What a runtime host needs to check an API key itself: its hash, tenant and scopes."""
    key = ApiKey.objects.select_related("tenant").filter(prefix=prefix, revoked_at=None).first()
    if key is None or not acts(key.tenant):
        return not_found("key_not_found", "No such key.")
    # Hosts ask again every few seconds while a key is in use: a cheap last-used clock.
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return JsonResponse(
        {"tenant": key.tenant_id, "secretHash": key.secret_hash, "scopes": key.scopes}
    )


@csrf_exempt
@require_POST
def deployment_ingest(request, code):
    """Log lines and invocations pushed by one generated (Vercel) deployment, authenticated
    by that deployment's own token: it can add lines to itself and to nothing else."""
    deployment = Deployment.objects.filter(code=code).first()
    if deployment is None or not bearer_matches(request, ingest_token(deployment)):
        return not_found("not_found", "Not found.")
    answer = store_batch(request, only=deployment)
    lease = request.headers.get("x-call-lease", "")
    if lease and answer.status_code == 200:  # the call's record: its lease goes back
        give_back_quietly(deployment, lease)
    return answer


def give_back_quietly(deployment: Deployment, lease: str) -> None:
    try:
        leases.give_back(str(deployment.code), lease)
    except redis.RedisError as exc:  # (forgotten after the call's longest run)
        log.warning("The lease %s of %s was not given back: %s", lease, deployment.code, exc)


def own_deployment(request, code) -> Deployment | None:
    """The generated deployment `code`, when the caller holds its own credential."""
    deployment = Deployment.objects.select_related("tenant").filter(code=code).first()
    if deployment is None or not bearer_matches(request, ingest_token(deployment)):
        return None
    return deployment


@require_GET
def deployment_secrets(request, code):
    """A generated deployment's own secrets, fetched at its cold start with its own
    credential: no key in the shared project opens another deployment's."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    if not acts(deployment.tenant):
        return not_found("tenant_suspended", SUSPENDED)
    return JsonResponse({"env": deployment.environment()})


@require_GET
def deployment_access(request, code):
    """Who may call a generated deployment now, asked by it at most every 2 s: whether its
    tenant is served (not suspended), whether its worker is public, and the digests of the
    invocation secrets that open it (the worker's valid ones, and the platform's own for its
    calls, which alone may name a trigger)."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    worker = deployment.worker
    return JsonResponse({
        "serving": acts(deployment.tenant),
        "message": "" if acts(deployment.tenant) else SUSPENDED,
        "public": worker.public,
        "secrets": sorted(active(worker).values_list("digest", flat=True)),
        "platform": digest(invoke_secret(deployment)),
    })  # fmt: skip


@require_GET
def deployment_peer(request, code):
    """Where a generated deployment's call sends its fetch of another production address of
    its tenant (`host`), so that a chain of calls sees one release whole, as on the local
    runtime: the deployment that address served in the call's generation (`generation`, or,
    for the chain's first call, the generation in which this deployment served its own
    production address), at its own immutable URL. {"url": null}: fetch it as it is."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    hostname = request.GET.get("host", "").lower()
    given = request.GET.get("generation", "")
    host = from_vercel_alias(hostname)
    nothing = JsonResponse({"url": None, "generation": None})
    if host is None or not (given == "" or given.isdigit()):
        return nothing
    generation = int(given) if given else served_through(deployment)
    if generation is None:
        return nothing
    answer = resolve(host, generation, str(deployment.tenant_id))
    if isinstance(answer, NotServed) or not answer.alias:
        return nothing
    target = answer.deployment
    if target.tenant_id != deployment.tenant_id or not target.backend_url:
        return nothing
    return JsonResponse({"url": target.backend_url, "generation": answer.generation})


@csrf_exempt
@require_POST
def deployment_calls(request, code):
    """A generated deployment's call takes its lease before it runs: the tenant's invocations
    per minute and the deployment's calls at once, counted with the runtime's hosts. The
    lease goes back with the call's record (deployment_ingest)."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    if not acts(deployment.tenant):
        return JsonResponse({"error": {"code": "tenant_suspended", "message": SUSPENDED}},
                            status=403)  # fmt: skip
    limits = worker_limits(deployment.worker)
    try:
        taken = leases.take(
            deployment.tenant_id, limits["invocationsPerMinute"], str(deployment.code),
            limits["maxConcurrency"], limits["timeoutMs"] + 10_000,
        )  # fmt: skip
    except redis.RedisError as exc:
        log.warning("Calls of %s go uncounted: Redis is unreachable (%s)", deployment.code, exc)
        return JsonResponse({"lease": ""})
    if isinstance(taken, leases.Refused):
        if taken.code == "rate_limited":
            told_calls_refused(deployment.tenant)
        return JsonResponse(
            {"error": {"code": taken.code, "message": taken.message}}, status=429,
            headers={"Retry-After": str(taken.retry_after)},
        )  # fmt: skip
    return JsonResponse({"lease": taken})


@require_GET
def deployment_key(request, code, prefix: str):
    """What a generated deployment needs to check a platform API key sent to it: the key's
    hash and scopes, for keys of the deployment's own tenant only."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    key = ApiKey.objects.filter(
        prefix=prefix, revoked_at=None, tenant_id=deployment.tenant_id
    ).first()
    if key is None or not acts(deployment.tenant):
        return not_found("key_not_found", "No such key.")
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return JsonResponse({"secretHash": key.secret_hash, "scopes": key.scopes})


@require_GET
async def events(request):
    """Announcements of changed deployments as Server-Sent Events (deployments.announce)."""
    if not runtime_token_ok(request):
        return HttpResponse(status=404)
    if not hasattr(request, "scope"):
        # Under WSGI a stream would hold a thread for good: hosts learn at first call.
        return HttpResponse(status=204)
    # ?preloads=1: a host that answers preload requests (deployments.announce.preload).
    preloads = request.GET.get("preloads") == "1"
    response = StreamingHttpResponse(announcements(preloads), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


# --- durable runs: stored here before the caller is told 202 --------------------------------


def accept_run(deployment: Deployment, raw: bytes) -> JsonResponse:
    """Store the run the caller asked for; its id and status URL (202). The same
    Idempotency-Key again answers the run it started then."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JsonResponse(
            {"error": {"code": "invalid_json", "message": "Expected JSON."}}, status=400
        )
    function = body.get("function")
    payload = body.get("payload", "null")
    key = body.get("idempotencyKey") or ""
    if not isinstance(function, str) or not isinstance(payload, str) or not isinstance(key, str):
        return JsonResponse(
            {
                "error": {
                    "code": "invalid_request",
                    "message": "Expected function, payload (JSON text).",
                }
            },
            status=400,
        )
    if function not in deployment.functions:
        return not_found("function_not_found", f'This deployment has no function "{function}".')
    if not acts(deployment.tenant):
        return not_found("tenant_suspended", SUSPENDED)
    try:
        run, created = accept(
            deployment, function, payload, key_prefix=str(body.get("key") or "")[:12],
            idempotency_key=key[:255],
        )  # fmt: skip
    except QuotaExceeded as exc:
        refused = JsonResponse(
            {"error": {"code": "quota_exceeded", "message": exc.message}}, status=exc.status
        )
        if exc.retry_after:
            refused["Retry-After"] = str(exc.retry_after)
        return refused
    return JsonResponse(
        {"runId": str(run.code), "status": run.status, "statusUrl": status_url(run),
         "created": created},
        status=202,
    )  # fmt: skip


def status_url(run) -> str:
    return f"{settings.PUBLIC_CONTROL_PLANE_URL.rstrip('/')}/api/runs/{run.code}"


@runtime_only
@require_POST
def runtime_runs(request, code):
    """A runtime host hands over an async call it admitted (key, quota checked)."""
    deployment = Deployment.objects.select_related("tenant", "worker").filter(code=code).first()
    if deployment is None or deployment.status != Deployment.Status.READY:
        return not_found("deployment_not_found", "No such deployment.")
    return accept_run(deployment, request.body)


@csrf_exempt
@require_POST
def deployment_runs(request, code):
    """A generated (Vercel) deployment hands over an async call, with its own credential."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    return accept_run(deployment, request.body)


# --- what a deployment's ctx reaches: its key-value bindings and runs it enqueues ----------


# The code's requests, by what they ask: counted here only for a generated deployment (the
# runtime's hosts count what their tenants' code does, cached reads too, in their reports).
DOING = {
    "kv": lambda deployment, raw, counted: bindings.kv_operation(deployment, raw, count=counted),
    "enqueue": lambda deployment, raw, counted: bindings.enqueue(deployment, raw),
    "steps": lambda deployment, raw, counted: bindings.steps(deployment, raw),
    "events": lambda deployment, raw, counted: bindings.event(deployment, raw),
}


@runtime_only
@require_POST
def runtime_binding(request, code, what: str):
    """A runtime host passes on ctx.kv or ctx.enqueue of the deployment's code."""
    if what in ("kv", "steps"):  # hot paths: what they need of the deployment never changes
        deployment = bindings.remembered("deployment", code, lambda: Deployment.objects.only(
            "code", "tenant_id", "kv_bindings").filter(code=code).first())  # fmt: skip
    else:
        deployment = Deployment.objects.select_related("tenant", "worker").filter(code=code).first()
    if deployment is None:
        return not_found("deployment_not_found", "No such deployment.")
    return DOING[what](deployment, request.body, False)


@csrf_exempt
@require_POST
def deployment_binding(request, code, what: str):
    """A generated (Vercel) deployment's ctx.kv or ctx.enqueue, with its own credential."""
    deployment = own_deployment(request, code)
    if deployment is None:
        return not_found("not_found", "Not found.")
    return DOING[what](deployment, request.body, True)
