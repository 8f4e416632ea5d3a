"""The Vercel Log Drains endpoint: verified deliveries become log lines like the runtime's."""

import hashlib
import hmac
import json

from django.conf import settings
from django.http import JsonResponse
from ninja import Router

from telemetry.ingest import deployments_by, parse_time, store
from telemetry.models import LogEntry

from .schemas import DrainOk, DrainStored, ErrorOut

router = Router(tags=["log drains"], auth=None)

LEVELS = {
    "info": "info",
    "warning": "warn",
    "warn": "warn",
    "error": "error",
    "fatal": "error",
    "debug": "debug",
}


def answer(status: int, body: dict) -> JsonResponse:
    response = JsonResponse(body, status=status)
    if settings.VERCEL_LOG_DRAIN_VERIFY:  # Vercel's endpoint check reads this header
        response["x-vercel-verify"] = settings.VERCEL_LOG_DRAIN_VERIFY
    return response


def parse_delivery(body: bytes) -> list[dict]:
    """A JSON array, one JSON object, or NDJSON (one object per line)."""
    text = body.decode()
    try:
        parsed = json.loads(text)
        return parsed if isinstance(parsed, list) else [parsed]
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def line_seq(item: dict) -> int:
    # Drain lines carry a unique id but no sequence number: derive a stable one from the id,
    # so a delivery Vercel repeats is stored once.
    return int(hashlib.sha1(str(item.get("id")).encode()).hexdigest()[:7], 16)  # noqa: S324


@router.get(
    "/drains/vercel",
    url_name="vercel-drain",
    response={200: DrainOk},
    summary="Vercel's endpoint check (answers x-vercel-verify)",
)
def vercel_drain_check(request):
    return answer(200, {"ok": True})


@router.post(
    "/drains/vercel",
    response={200: DrainStored, frozenset({400, 403}): ErrorOut},
    summary="A Vercel Log Drain delivery (JSON array, object or NDJSON), signed with "
    "x-vercel-signature",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            }
        }
    },
)
def vercel_drain(request):
    secret = settings.VERCEL_LOG_DRAIN_SECRET
    given = request.headers.get("x-vercel-signature", "")
    expected = hmac.new(secret.encode(), request.body, hashlib.sha1).hexdigest()
    if not secret or not hmac.compare_digest(given.lower(), expected):
        return answer(403, {"error": {"code": "bad_signature", "message": "Signature mismatch."}})
    try:
        items = [i for i in parse_delivery(request.body) if isinstance(i, dict)]
    except (ValueError, UnicodeDecodeError):
        return answer(400, {"error": {"code": "invalid_json", "message": "Not JSON or NDJSON."}})
    deployments = deployments_by("backend_id", {i.get("deploymentId") for i in items})
    lines, worker_ids = [], set()
    for item in items:
        deployment = deployments.get(item.get("deploymentId"))
        if deployment is None or item.get("id") is None:
            continue  # not one of ours
        worker_ids.add(deployment.worker_id)
        lines.append(
            LogEntry(
                request_id=str(item.get("requestId") or f"drain_{deployment.backend_id}")[:64],
                seq=line_seq(item),
                function=str(item.get("path") or "")[:200],
                deployment_id=deployment.id,
                tenant_id=deployment.tenant_id,
                timestamp=parse_time(item.get("timestamp")),
                level=LEVELS.get(str(item.get("level", "")).lower(), "log"),
                message=str(item.get("message", "")),
            )
        )
    store([], lines, worker_ids)
    return answer(200, {"stored": len(lines)})
