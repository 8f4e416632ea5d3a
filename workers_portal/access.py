"""Who may do what in a tenant: the one place views ask."""

from django.core.exceptions import PermissionDenied

from .models import Membership


def require_deployer(user, tenant) -> Membership:
    """The user's membership if it may deploy and invoke; 403 for viewers."""
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership is None or not membership.can_deploy:
        raise PermissionDenied("Your role in this tenant may only read.")
    return membership


def require_admin(user, tenant) -> Membership:
    """The user's membership if it may manage keys and members; 403 otherwise."""
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership is None or membership.role not in (Membership.Role.OWNER, Membership.Role.ADMIN):
        raise PermissionDenied("Only owners and admins of this tenant may do this.")
    return membership
