"""Invoking a deployment from the portal, through the runtime like any other caller."""

from dataclasses import dataclass

import httpx
from django.conf import settings

from workers_portal.limits import effective_limits


@dataclass
class InvokeAnswer:
    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return self.status == 200


def target(deployment) -> tuple[str, dict[str, str]]:
    """Where the deployment answers, and the headers that let the platform in."""
    headers = {"content-type": "application/json"}
    if deployment.backend == "vercel":
        from .generator import invoke_secret

        if deployment.invoke_secret_required:
            headers["x-invoke-secret"] = invoke_secret(deployment)
        if settings.VERCEL_PROTECTION_BYPASS:
            headers["x-vercel-protection-bypass"] = settings.VERCEL_PROTECTION_BYPASS
        return deployment.deployment_url, headers
    # Lets the runtime record this call as made from the portal.
    headers["x-runtime-token"] = settings.RUNTIME_TOKEN
    headers["x-invocation-trigger"] = "portal"
    return deployment.path_url, headers


def invoke_deployment(deployment, function: str, payload_json: str) -> InvokeAnswer:
    base, headers = target(deployment)
    # The worker's own timeout (it may be longer than the platform's), and time to answer.
    timeout = effective_limits(deployment.worker)["timeout_seconds"] + 10
    try:
        response = httpx.post(
            f"{base}/api/invoke/{function}", content=payload_json, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        message = f"The deployment could not be reached at {base} ({exc.__class__.__name__})."
        return InvokeAnswer(503, {"error": {"code": "runtime_unavailable", "message": message}})
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"code": "bad_answer", "message": response.text[:500]}}
    return InvokeAnswer(response.status_code, body)
