"""Which tenants a session has signed in to through their providers, and which a member
must still do so for: a tenant that requires single sign-on is acted on only from a session
its own provider signed in."""

from django.contrib.sessions.backends.base import SessionBase

from tenancy.access import Principal
from tenancy.models import Tenant

SESSION_KEY = "sso_tenants"


def passed(session: SessionBase) -> list[int]:
    return list(session.get(SESSION_KEY, []))


def mark(session: SessionBase, tenant_id: int, kept: list[int] | None = None) -> None:
    session[SESSION_KEY] = sorted({*(kept or []), *passed(session), tenant_id})


def missing(principal: Principal, session: SessionBase) -> list[Tenant]:
    """The principal's tenants that require single sign-on this session has not passed (its
    grants hold the tenants already: nothing is read)."""
    wanted = [t for t in principal.tenants if t.require_single_sign_on]
    if not wanted:
        return []
    done = set(passed(session))
    return [t for t in wanted if t.pk not in done]


def asking(tenant: Tenant) -> str:
    return (
        f"{tenant.name} signs its members in through its own identity provider: continue "
        "there to go on."
    )
