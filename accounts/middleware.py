"""Sends an account that must do something before anything else (set up a second factor;
sso.middleware: sign in through its tenant's provider) to where it is done. accounts.factors
says who must have a second factor."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tenancy.access import Principal, member_principal

from .factors import asking, why_needed

# Pages an account without its factor still reaches: its own account pages (where the factor
# is set up), signing out, an invitation, and what is not a page (the API, which refuses such
# a session itself and serves API keys; the runtime's internal API; static files).
OPEN = ("/accounts/", "/logout/", "/login/", "/invite/", "/api/", "/internal/", "/static/")


class Requirement:
    """A page request of a signed-in account that has not met the requirement goes to
    `pending`'s page (an htmx request is told to go there), with its message."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def pending(self, request: HttpRequest, principal: Principal) -> tuple[str, str] | None:
        """Where to send this account, and why; None once it has met the requirement."""
        raise NotImplementedError

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not request.path.startswith(OPEN):
            # The request's principal is this member's (built once per request), unless the
            # request also named an API key: then the session is judged on its own.
            principal = request.principal  # type: ignore[attr-defined]
            if principal.key is not None or principal.user != user:
                principal = member_principal(user)
            found = self.pending(request, principal)
            if found:
                target, message = found
                messages.warning(request, message)  # (shown where either answer leads)
                if request.headers.get("HX-Request"):
                    return HttpResponse(status=204, headers={"HX-Redirect": target})
                return HttpResponseRedirect(target)
        return self.get_response(request)


class SecondFactorRequired(Requirement):
    def pending(self, request: HttpRequest, principal: Principal) -> tuple[str, str] | None:
        who = why_needed(principal)
        return (reverse("mfa_index"), asking(who)) if who else None
