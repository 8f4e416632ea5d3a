"""Members and invitations, as the portal and the API change them: who may grant which role
(owners make owners), a tenant keeps at least one owner, an invitation goes out by mail with
its link. Callers audit; refusals are MemberRefused with the reason."""

import secrets
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .access import Principal, grantable
from .branding import brand_for
from .mail import send
from .models import Invitation, Membership, Tenant

Role = Membership.Role


class MemberRefused(Exception):
    """Not allowed: only owners make, change or remove owners; the last owner stays."""


def last_owner(target: Membership) -> bool:
    owners = target.tenant.memberships.filter(role=Role.OWNER)
    return target.role == Role.OWNER and owners.count() == 1


def invite(
    principal: Principal, tenant: Tenant, email: str, role: str, link_for: Callable[[str], str]
) -> Invitation:
    """A new invitation, mailed; `link_for(token)` is the absolute accept link."""
    if role not in Role.values:
        raise MemberRefused(f"{role!r} is not a role: {', '.join(Role.values)}.")
    if not grantable(principal, tenant.pk, role):
        raise MemberRefused("Only owners may invite owners.")
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token=secrets.token_urlsafe(32),
        invited_by=principal.user,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_DAYS),
    )
    brand = brand_for(tenant)
    send(
        f"You are invited to {tenant.name} on {brand['name']}",
        f"{principal.label} invited you to join {tenant.name} as {role}.\n\n"
        f"Accept (with the account of this address, before "
        f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC): {link_for(invitation.token)}\n",
        [invitation.email],
        brand,
    )
    return invitation


def change_role(principal: Principal, target: Membership, role: str) -> None:
    allowed = grantable(principal, target.tenant_id, role) and grantable(
        principal, target.tenant_id, target.role
    )
    if role not in Role.values or not allowed:
        raise MemberRefused("Only owners may make or change owners.")
    if last_owner(target) and role != Role.OWNER:
        raise MemberRefused("A tenant keeps at least one owner.")
    Membership.objects.filter(pk=target.pk).update(role=role)


def remove(principal: Principal, target: Membership) -> None:
    if not grantable(principal, target.tenant_id, target.role) or last_owner(target):
        raise MemberRefused("Owners are removed by owners, and a tenant keeps at least one.")
    target.delete()


def withdraw(principal: Principal, invitation: Invitation) -> bool:
    """True if it was open and is withdrawn now."""
    if not grantable(principal, invitation.tenant_id, invitation.role):
        raise MemberRefused("Only owners may withdraw an invitation to be an owner.")
    return bool(
        Invitation.objects.filter(pk=invitation.pk, accepted_at=None, withdrawn_at=None).update(
            withdrawn_at=timezone.now()
        )
    )


def open_invitations(tenant: Tenant):
    return tenant.invitations.filter(
        accepted_at=None, withdrawn_at=None, expires_at__gt=timezone.now()
    )
