"""After a sign-in through a tenant's provider: the session remembers it passed that tenant's
single sign-on, the tenant is the one the portal shows, and the tenant's audit log says so.
A provider removed takes its requirement with it."""

from typing import Any

from allauth.account.signals import user_logged_in
from allauth.socialaccount.models import SocialLogin
from django.contrib.auth.models import User
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest

from tenancy.middleware import SESSION_KEY as TENANT_KEY
from tenancy.models import AuditEvent, Tenant

from . import providers
from .models import SingleSignOn
from .rules import mark


@receiver(user_logged_in)
def signed_in(
    sender: object, request: HttpRequest, user: User, sociallogin: SocialLogin | None = None,
    **kwargs: Any,
) -> None:  # fmt: skip
    if sociallogin is None:
        return
    sso = providers.for_provider(sociallogin.account.provider)
    if sso is None:
        return
    mark(request.session, sso.tenant.pk, sociallogin.state.get("sso_kept"))
    request.session[TENANT_KEY] = sso.tenant.pk
    AuditEvent.objects.create(
        tenant=sso.tenant, actor=user, actor_label=user.get_username(),
        action="account.single_sign_on", target=user.get_username(),
        details={"issuer": sso.issuer, "email": user.email}, ip=request.META.get("REMOTE_ADDR"),
    )  # fmt: skip


@receiver(post_delete, sender=SingleSignOn)
def removed(sender: object, instance: SingleSignOn, **kwargs: Any) -> None:
    """Without its provider a tenant cannot require it (however it was removed: by an owner,
    or by an operator in the admin), or its members could not get in at all."""
    Tenant.objects.filter(pk=instance.tenant_id).update(require_single_sign_on=False)
