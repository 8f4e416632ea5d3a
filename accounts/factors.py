"""Who must have a second factor: operators (unless the demo turned that off) and members of a
tenant whose owner requires one. Until they have one, the portal and the admin take them to
set it up; API keys and the runtime are not concerned (a key is its own credential)."""

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib.auth.models import User

from tenancy.access import Principal


def why_needed(principal: Principal) -> str:
    """Who requires a second factor of this member (empty: nobody, or they have one). The
    principal's grants already hold its tenants: nothing is read unless someone requires one."""
    user = principal.user
    who = []
    if user.is_staff and settings.OPERATORS_NEED_SECOND_FACTOR:
        who.append("this platform (for its operators)")
    who += [tenant.name for tenant in principal.tenants if tenant.require_second_factor]
    if not who or is_mfa_enabled(user):
        return ""
    return " and ".join(who)


def asking(who: str) -> str:
    """What such an account is told, on a page or from the API."""
    return (
        f"{who[0].upper()}{who[1:]} requires a second factor for your account: set one up "
        "(Your account, Two-factor: an authenticator app or a passkey) to go on."
    )


KINDS = {"totp": "authenticator app", "webauthn": "passkey"}


def second_factors(users: list[User]) -> dict[int, list[str]]:
    """Each account's second factors by kind (recovery codes alone are not one), for pages
    that show who has one."""
    found: dict[int, list[str]] = {}
    rows = Authenticator.objects.filter(user__in=users, type__in=KINDS)
    for user_id, kind in rows.values_list("user_id", "type").distinct().order_by("type"):
        found.setdefault(user_id, []).append(KINDS[kind])
    return found
