"""The internal API the runtime hosts call: learn deployments, fetch artifacts, ingest."""

import hmac
import json
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from workers.models import Worker

from .models import Artifact, Deployment, Invocation, LogEntry


def runtime_only(view):
    """Only callers holding RUNTIME_TOKEN get in; everyone else sees a 404."""

    def wrapped(request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given, settings.RUNTIME_TOKEN):
            return JsonResponse(
                {"error": {"code": "not_found", "message": "Not found."}}, status=404
            )
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapped)


def not_found(code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=404)


def deployment_config(deployment: Deployment, alias: bool) -> dict:
    return {
        "id": str(deployment.code),
        "host": deployment.host,
        "functions": deployment.functions,
        "artifact": deployment.artifact_id,
        "timeoutMs": int(settings.RUNTIME_TIMEOUT_SECONDS * 1000),
        "maxBodyBytes": settings.RUNTIME_MAX_BODY_BYTES,
        "alias": alias,
    }


@runtime_only
@require_GET
def resolve_host(request, host: str):
    """A deployment host (name--id--tenant) or a worker's production host (name--tenant)."""
    parts = host.split("--")
    if len(parts) == 3:
        name, short_id, slug = parts
        deployment = (
            Deployment.objects.select_related("worker", "tenant")
            .filter(short_id=short_id, worker__name=name, tenant__slug=slug)
            .first()
        )
        if deployment is None:
            return not_found("deployment_not_found", f"No deployment {host}.")
        if deployment.status != Deployment.Status.READY:
            return not_found(
                "deployment_not_ready",
                f"Deployment {host} is {deployment.status}, not ready; nothing is served for it.",
            )
        return JsonResponse(deployment_config(deployment, alias=False))
    if len(parts) == 2:
        name, slug = parts
        worker = (
            Worker.objects.select_related("production__worker", "production__tenant")
            .filter(name=name, tenant__slug=slug)
            .first()
        )
        if worker is None:
            return not_found("deployment_not_found", f"No worker {host}.")
        if worker.production is None:
            return not_found("deployment_not_ready", f"Worker {host} has no ready deployment yet.")
        return JsonResponse(deployment_config(worker.production, alias=True))
    return not_found("deployment_not_found", f"No deployment {host}.")


@runtime_only
@require_GET
def artifact(request, sha256: str):
    found = Artifact.objects.filter(sha256=sha256).first()
    if found is None:
        return not_found("artifact_not_found", "No such artifact.")
    return HttpResponse(found.content, content_type="text/javascript")


def parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return datetime.now(UTC)


@runtime_only
@require_POST
def ingest(request):
    """Store invocations and log lines; idempotent, so a re-sent batch adds nothing."""
    try:
        batch = json.loads(request.body)
        invocations = list(batch.get("invocations", []))
        logs = list(batch.get("logs", []))
    except (ValueError, AttributeError, TypeError):
        return JsonResponse(
            {"error": {"code": "invalid_json", "message": "Bad batch."}}, status=400
        )
    codes = {item.get("deploymentId") for item in invocations + logs}
    deployments = {
        str(d.code): d
        for d in Deployment.objects.filter(code__in=[c for c in codes if c]).only(
            "id", "code", "tenant_id"
        )
    }
    new_invocations = []
    for item in invocations:
        deployment = deployments.get(item.get("deploymentId"))
        if deployment is None:
            continue  # its deployment was deleted meanwhile
        new_invocations.append(
            Invocation(
                request_id=str(item["requestId"])[:64],
                deployment_id=deployment.id,
                tenant_id=deployment.tenant_id,
                function=str(item.get("function", ""))[:200],
                trigger=item.get("trigger") or Invocation.Trigger.HTTP,
                status=item.get("status") or Invocation.Status.ERROR,
                status_code=int(item.get("statusCode") or 0),
                error_message=str(item.get("errorMessage") or ""),
                duration_ms=float(item.get("durationMs") or 0),
                started_at=parse_time(item.get("startedAt")),
            )
        )
    new_lines = []
    for item in logs:
        deployment = deployments.get(item.get("deploymentId"))
        if deployment is None:
            continue
        new_lines.append(
            LogEntry(
                request_id=str(item["requestId"])[:64],
                seq=int(item["seq"]),
                deployment_id=deployment.id,
                tenant_id=deployment.tenant_id,
                timestamp=parse_time(item.get("timestamp")),
                level=item.get("level") if item.get("level") in LogEntry.Level.values else "log",
                message=str(item.get("message", "")),
            )
        )
    with transaction.atomic():
        Invocation.objects.bulk_create(new_invocations, ignore_conflicts=True)
        LogEntry.objects.bulk_create(new_lines, ignore_conflicts=True)
    return JsonResponse({"invocations": len(new_invocations), "logs": len(new_lines)})
