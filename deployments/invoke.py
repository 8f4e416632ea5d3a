"""Invoking a deployment from the portal, through the runtime like any other caller."""

from dataclasses import dataclass

import httpx
from django.conf import settings


@dataclass
class InvokeAnswer:
    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return self.status == 200


def target(deployment, function: str) -> tuple[str, dict[str, str]]:
    """Where the deployment answers, and the headers that let the platform in."""
    headers = {"content-type": "application/json"}
    if deployment.backend == "vercel":
        from .generator import invoke_secret

        if deployment.invoke_secret_required:
            headers["x-invoke-secret"] = invoke_secret(deployment)
        if settings.VERCEL_PROTECTION_BYPASS:
            headers["x-vercel-protection-bypass"] = settings.VERCEL_PROTECTION_BYPASS
        return f"{deployment.deployment_url}/api/invoke/{function}", headers
    # Lets the runtime record this call as made from the portal.
    headers["x-runtime-token"] = settings.RUNTIME_TOKEN
    headers["x-invocation-trigger"] = "portal"
    return f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/{function}", headers


def invoke_deployment(deployment, function: str, payload_json: str) -> InvokeAnswer:
    url, headers = target(deployment, function)
    try:
        response = httpx.post(
            url,
            content=payload_json,
            headers=headers,
            timeout=settings.RUNTIME_TIMEOUT_SECONDS + 10,
        )
    except httpx.HTTPError as exc:
        where = (
            url.split("/api/invoke/")[0] if deployment.backend == "vercel" else settings.RUNTIME_URL
        )
        message = f"The deployment could not be reached at {where} ({exc.__class__.__name__})."
        return InvokeAnswer(503, {"error": {"code": "runtime_unavailable", "message": message}})
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"code": "bad_answer", "message": response.text[:500]}}
    return InvokeAnswer(response.status_code, body)
