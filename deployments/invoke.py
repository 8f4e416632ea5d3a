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


def invoke_deployment(deployment, function: str, payload_json: str) -> InvokeAnswer:
    url = f"{settings.RUNTIME_URL}/d/{deployment.host}/api/invoke/{function}"
    headers = {
        "content-type": "application/json",
        # Lets the runtime record this call as made from the portal.
        "x-runtime-token": settings.RUNTIME_TOKEN,
        "x-invocation-trigger": "portal",
    }
    try:
        response = httpx.post(
            url,
            content=payload_json,
            headers=headers,
            timeout=settings.RUNTIME_TIMEOUT_SECONDS + 10,
        )
    except httpx.HTTPError as exc:
        message = f"The runtime could not be reached at {settings.RUNTIME_URL} ({exc.__class__.__name__})."
        return InvokeAnswer(503, {"error": {"code": "runtime_unavailable", "message": message}})
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"code": "bad_answer", "message": response.text[:500]}}
    return InvokeAnswer(response.status_code, body)
