"""Takes a member of a tenant that requires single sign-on, signed in some other way, to
that tenant's provider before anything else (sso.rules says who must)."""

from django.http import HttpRequest
from django.urls import reverse

from accounts.middleware import Requirement
from tenancy.access import Principal

from .rules import asking, missing


class SingleSignOnRequired(Requirement):
    def pending(self, request: HttpRequest, principal: Principal) -> tuple[str, str] | None:
        left = missing(principal, request.session)
        if not left:
            return None
        return reverse("sso-continue", args=[left[0].slug]), asking(left[0])
