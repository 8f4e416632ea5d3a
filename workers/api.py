"""The JSON API for CI systems and scripts: camelCase bodies, errors as
{"error": {"code", "message"}}, API keys (Bearer) or a signed-in session."""

import json
import uuid
from functools import wraps

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from deployments.announce import announce
from deployments.deploy import cancel, deploy
from deployments.models import Deployment
from workers_portal.audit import record
from workers_portal.models import Tenant, label_validator
from workers_portal.quotas import QuotaExceeded, check_new_worker

from .api_keys import principal_for
from .models import Worker


def error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def api_view(methods: dict[str, str]):
    """Routes by method, each needing a scope; the principal goes to the view."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            scope = methods.get(request.method)
            if scope is None:
                return error(405, "method_not_allowed", f"Use {' or '.join(methods)}.")
            principal = principal_for(request)
            if principal is None:
                return error(401, "unauthenticated", "Send `Authorization: Bearer <API key>`.")
            if principal.key is None and request.method not in ("GET", "HEAD"):
                # A browser session must prove the request came from our pages.
                rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
                if rejected is not None:
                    return error(403, "csrf_failed", "CSRF check failed; use an API key.")
            request.principal = principal
            request.scope = scope
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def allowed(request, tenant_id: int) -> JsonResponse | None:
    if not request.principal.can(tenant_id, request.scope):
        return error(403, "forbidden", f"This key or role lacks the {request.scope} scope.")
    return None


def read_json(request) -> dict | JsonResponse:
    if len(request.body) > settings.MAX_SOURCE_BYTES + 64 * 1024:
        return error(
            413, "payload_too_large", f"The body is larger than {settings.MAX_SOURCE_BYTES} bytes."
        )
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        return error(400, "invalid_json", f"The body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return error(400, "invalid_json", "The body must be a JSON object.")
    return body


def deployment_json(d: Deployment) -> dict:
    return {
        "id": str(d.code),
        "status": d.status,
        "backend": d.backend,
        "functions": d.functions,
        "errorMessage": d.error_message or None,
        "deploymentId": d.deployment_id or None,
        "deploymentUrl": d.deployment_url or None,
        "createdAt": d.created.isoformat(),
        "readyAt": d.finished_at.isoformat() if d.finished_at and d.status == "ready" else None,
    }


def worker_json(w: Worker) -> dict:
    latest = w.latest_deployment()
    return {
        "id": str(w.code),
        "name": w.name,
        "tenant": w.tenant.slug,
        "url": w.url,
        "public": w.public,
        "production": deployment_json(w.production) if w.production else None,
        "latestDeployment": deployment_json(latest) if latest else None,
        "createdAt": w.created.isoformat(),
    }


def visible_workers(request):
    return Worker.objects.filter(tenant_id__in=request.principal.tenant_ids).select_related(
        "tenant", "production__worker", "production__tenant"
    )


def find_worker(request, code) -> Worker | None:
    return visible_workers(request).filter(code=code).first()


def worker_or_error(request, code) -> Worker | JsonResponse:
    """The worker if the caller may act on it with the view's scope, else the error."""
    worker = find_worker(request, code)
    if worker is None:
        return error(404, "not_found", "No such worker.")
    return allowed(request, worker.tenant_id) or worker


@api_view({"GET": "read", "POST": "deploy"})
def workers(request):
    if request.method == "GET":
        found = [w for w in visible_workers(request) if request.principal.can(w.tenant_id, "read")]
        return JsonResponse({"workers": [worker_json(w) for w in found]})
    body = read_json(request)
    if isinstance(body, JsonResponse):
        return body
    tenant = choose_tenant(request, body.get("tenant"))
    if tenant is None:
        return error(404, "not_found", "No such tenant.")
    if denied := allowed(request, tenant.id):
        return denied
    name, code = body.get("name"), body.get("code")
    if not isinstance(name, str) or not isinstance(code, str) or not code.strip():
        return error(400, "invalid_request", 'Send {"name": "...", "code": "<TypeScript module>"}.')
    try:
        label_validator(name)
    except ValidationError as exc:
        return error(400, "invalid_name", f"Invalid worker name {name!r}: {exc.messages[0]}")
    if len(name) > 30:
        return error(400, "invalid_name", "Worker names are at most 30 characters.")
    if len(code.encode()) > settings.MAX_SOURCE_BYTES:
        return error(
            413,
            "payload_too_large",
            f"The module is larger than {settings.MAX_SOURCE_BYTES} bytes.",
        )
    user = request.user if request.principal.key is None else None
    try:
        with transaction.atomic():
            worker = Worker.objects.filter(tenant=tenant, name=name).first()
            if worker is None:
                check_new_worker(tenant)
                worker = Worker.objects.create(tenant=tenant, name=name)
            deployment = deploy(worker, code, user)
            record(request, tenant, "deploy", name, deployment=deployment.short_id)
    except IntegrityError:
        return error(409, "conflict", "The worker was created by another request; retry.")
    except QuotaExceeded as exc:
        if exc.retry_after is None:
            return error(403, "quota_exceeded", exc.message)
        response = error(429, "quota_exceeded", exc.message)
        response["Retry-After"] = str(exc.retry_after)
        return response
    response = worker_json(worker)
    response["deployment"] = deployment_json(deployment)
    return JsonResponse(response, status=202)


def choose_tenant(request, slug) -> Tenant | None:
    ids = request.principal.tenant_ids
    if slug:
        return Tenant.objects.filter(id__in=ids, slug=slug).first()
    if len(ids) == 1:
        return Tenant.objects.filter(id=ids[0]).first()
    current = getattr(request, "tenant", None)
    return current if current is not None and current.id in ids else None


@api_view({"GET": "read", "DELETE": "deploy"})
def worker_detail(request, code):
    worker = worker_or_error(request, code)
    if isinstance(worker, JsonResponse):
        return worker
    if request.method == "DELETE":
        worker.delete()
        record(request, worker.tenant, "worker.delete", worker.name)
        return HttpResponse(status=204)
    return JsonResponse(worker_json(worker))


@api_view({"GET": "read"})
def worker_deployments(request, code):
    worker = worker_or_error(request, code)
    if isinstance(worker, JsonResponse):
        return worker
    found = worker.deployments.select_related("worker", "tenant")[:100]
    return JsonResponse({"deployments": [deployment_json(d) for d in found]})


def deployment_or_error(request, code) -> Deployment | JsonResponse:
    """The deployment if the caller's tenants hold it and the scope allows; else the error."""
    d = Deployment.objects.filter(tenant_id__in=request.principal.tenant_ids, code=code).first()
    if d is None:
        return error(404, "not_found", "No such deployment.")
    return allowed(request, d.tenant_id) or d


@api_view({"GET": "read"})
def deployment_detail(request, code):
    d = deployment_or_error(request, code)
    if isinstance(d, JsonResponse):
        return d
    return JsonResponse(deployment_json(d))


@api_view({"POST": "deploy"})
def deployment_cancel(request, code):
    """Stop a build that has not ended (on Vercel too); 409 once it has."""
    d = deployment_or_error(request, code)
    if isinstance(d, JsonResponse):
        return d
    if not cancel(d):
        return error(
            409,
            "already_finished",
            f"This deployment is {d.status}; only builds that have not ended can be canceled.",
        )
    record(request, d.tenant, "deployment.cancel", d.short_id)
    return JsonResponse(deployment_json(d))


@api_view({"POST": "deploy"})
def worker_production(request, code):
    """Promote a ready deployment to production, or roll back to an earlier one."""
    worker = worker_or_error(request, code)
    if isinstance(worker, JsonResponse):
        return worker
    body = read_json(request)
    if isinstance(body, JsonResponse):
        return body
    target = (
        worker.deployments.filter(code=str(body.get("id", ""))).first()
        if _is_uuid(body.get("id"))
        else None
    )
    if target is None:
        return error(
            404, "not_found", 'No such deployment of this worker (send {"id": "<deployment id>"}).'
        )
    if target.status != Deployment.Status.READY:
        return error(
            409, "not_ready", f"That deployment is {target.status}; only ready ones serve."
        )
    Worker.objects.filter(pk=worker.pk).update(production=target)
    announce(worker.host)
    record(request, worker.tenant, "production.set", worker.name, deployment=target.short_id)
    worker.refresh_from_db()
    return JsonResponse(worker_json(worker))


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
