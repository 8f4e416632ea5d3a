"""Signing the `functions` CLI in (workers.key_requests): it asks for a key, prints a code
and a link; a member approves in the portal; it polls until it has the key. Both calls are
open (there is no key yet); what they create is bounded there."""

from django.urls import reverse
from ninja import Router, Status

from workers import key_requests

from .errors import ApiError
from .schemas import ErrorOut, LoginIn, LoginOut, LoginPollIn, LoginPollOut

router = Router(tags=["cli"], auth=None)


@router.post(
    "/cli/logins",
    response={201: LoginOut, frozenset({400, 429}): ErrorOut},
    summary="Ask for a key for the CLI; a member approves it at `approveUrl`",
)
def start_login(request, body: LoginIn):
    try:
        started, token = key_requests.start(body.client, request.META.get("REMOTE_ADDR"))
    except key_requests.TooMany as exc:
        raise ApiError(429, "too_many_requests", str(exc), {"Retry-After": "60"}) from exc
    approve = request.build_absolute_uri(reverse("cli-approve")) + f"?code={started.code}"
    return Status(
        201,
        {
            "code": started.code,
            "approveUrl": approve,
            "pollToken": token,
            "expiresAt": started.expires,
            "interval": key_requests.POLL_SECONDS,
        },
    )


@router.post(
    "/cli/logins/poll",
    response={200: LoginPollOut, frozenset({400, 404}): ErrorOut},
    summary="Whether the sign-in was approved; the key comes once, with `approved`",
)
def poll_login(request, body: LoginPollIn):
    status, found, secret = key_requests.collect(body.pollToken)
    if found is None:
        raise ApiError(404, "not_found", "No such sign-in: run `functions login` again.")
    answer: dict = {"status": status, "token": None, "tenant": None, "scopes": None}
    if secret is not None and found.key is not None:
        answer.update(token=secret, tenant=found.key.tenant.slug, scopes=found.key.scopes)
    return answer
