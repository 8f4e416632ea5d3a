"""Invoking a deployment from the portal over HTTP, as any other caller does."""

import httpx

from tenancy.limits import effective_limits

from .base import InvokeAnswer


def post_invoke(deployment, base: str, headers: dict, function: str, payload_json: str):
    """POST the payload to `<base>/api/invoke/<function>`; the answer, or why none came."""
    # The worker's own timeout (it may be longer than the platform's), and time to answer.
    timeout = effective_limits(deployment.worker)["timeout_seconds"] + 10
    headers = {"content-type": "application/json", **headers}
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
