"""Takes an account that must have a second factor and has none to set one up before anything
else (accounts.factors says who must)."""

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from tenancy.access import member_principal

from .factors import asking, why_needed

# Pages an account without its factor still reaches: its own account pages (where the factor
# is set up), signing out, an invitation, and what is not a page (the API, which refuses such
# a session itself and serves API keys; the runtime's internal API; static files).
OPEN = ("/accounts/", "/logout/", "/login/", "/invite/", "/api/", "/internal/", "/static/")


class SecondFactorRequired:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not request.path.startswith(OPEN):
            # The request's principal is this member's (built once per request), unless the
            # request also named an API key: then the session is judged on its own.
            principal = request.principal  # type: ignore[attr-defined]
            if principal.key is not None or principal.user != user:
                principal = member_principal(user)
            who = why_needed(principal)
            if who:
                target = reverse("mfa_index")
                messages.warning(request, asking(who))  # (shown where either answer leads)
                if request.headers.get("HX-Request"):
                    return HttpResponse(status=204, headers={"HX-Redirect": target})
                return HttpResponseRedirect(target)
        return self.get_response(request)
