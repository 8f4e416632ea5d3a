"""The audit of accounts: every sign-in, failed sign-in, password change or reset, address
confirmed or changed, and second factor added, removed, renewed or failed goes into the audit
log of each tenant the account belongs to (their owners see their members' account activity),
with the address it came from. A failure for a name no account has is logged only. And an
account made anywhere (an invitation, the admin, a command) has its address kept as allauth
keeps addresses, unproven until confirmed."""

import logging
from collections.abc import Callable
from typing import Any

from allauth.account.adapter import get_adapter
from allauth.account.models import EmailAddress
from allauth.account.signals import (
    email_changed,
    email_confirmed,
    password_changed,
    password_reset,
    password_set,
)
from allauth.mfa import signals as mfa
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.urls import reverse

from tenancy.models import AuditEvent, Membership

from .models import MAX_BROWSERS, KnownBrowser

log = logging.getLogger(__name__)


def audit(
    request: HttpRequest | None, user: User, action: str, by: User | None = None, **details: Any
) -> None:
    """`by`: who did it, when not the account itself (an operator)."""
    ip = request.META.get("REMOTE_ADDR") if request is not None else None
    agent = request.META.get("HTTP_USER_AGENT", "")[:200] if request is not None else ""
    actor = by or user
    tenants = Membership.objects.filter(user=user).values_list("tenant_id", flat=True)
    for tenant in tenants:  # (one by one: each event keeps its tenant's slug as it was)
        AuditEvent.objects.create(
            tenant_id=tenant, actor=actor, actor_label=actor.get_username(), action=action,
            target=user.get_username(), details={**details, "browser": agent}, ip=ip or None,
        )  # fmt: skip


@receiver(user_logged_in)
def signed_in(sender: object, request: HttpRequest, user: User, **kwargs: Any) -> None:
    audit(request, user, "account.sign_in")
    if is_new_browser(request, user):
        get_adapter(request).send_notification_mail(
            "account/email/new_sign_in", user, {
                "user": user,
                "sessions_url": request.build_absolute_uri(reverse("usersessions_list")),
                "password_url": request.build_absolute_uri(reverse("account_change_password")),
            },
        )  # fmt: skip


def is_new_browser(request: HttpRequest, user: User) -> bool:
    """Whether this sign-in comes from a browser the account was never signed in from (its
    very first sign-in is not news)."""
    agent = request.META.get("HTTP_USER_AGENT", "")[:200]
    known = KnownBrowser.objects.filter(user=user)
    had_any = known.exists()
    browser, created = KnownBrowser.objects.get_or_create(user=user, agent=agent)
    if not created:
        browser.save(update_fields=["last_seen"])
        return False
    stale = known.order_by("-last_seen").values_list("pk", flat=True)[MAX_BROWSERS:]
    KnownBrowser.objects.filter(pk__in=list(stale)).delete()
    return had_any


@receiver(user_login_failed)
def sign_in_failed(
    sender: object, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    name = credentials.get("username") or credentials.get("email") or ""
    user = (
        get_user_model().objects.filter(Q(username__iexact=name) | Q(email__iexact=name)).first()
        if name
        else None
    )
    if user is None:
        log.info(
            "Failed sign-in for an unknown account from %s",
            getattr(request, "META", {}).get("REMOTE_ADDR"),
        )
        return
    audit(request, user, "account.sign_in_failed")


@receiver(password_changed)
def changed(sender: object, request: HttpRequest, user: User, **kwargs: Any) -> None:
    audit(request, user, "account.password_change")


@receiver(password_set)
def set_(sender: object, request: HttpRequest, user: User, **kwargs: Any) -> None:
    audit(request, user, "account.password_set")


@receiver(password_reset)
def reset(sender: object, request: HttpRequest, user: User, **kwargs: Any) -> None:
    audit(request, user, "account.password_reset")


@receiver(email_confirmed)
def address_confirmed(
    sender: object, request: HttpRequest, email_address: EmailAddress, **kwargs: Any
) -> None:
    audit(request, email_address.user, "account.email_confirmed", email=email_address.email)


@receiver(email_changed)
def address_changed(
    sender: object, request: HttpRequest, user: User, from_email_address: EmailAddress | None,
    to_email_address: EmailAddress, **kwargs: Any,
) -> None:  # fmt: skip
    was = from_email_address.email if from_email_address is not None else ""
    audit(request, user, "account.email_changed", was=was, email=to_email_address.email)


# What is done to an account's second factors (kinds: totp, recovery_codes, webauthn).
FACTOR_ACTIONS = {
    mfa.authenticator_added: "account.second_factor_added",
    mfa.authenticator_removed: "account.second_factor_removed",
    mfa.authenticator_reset: "account.second_factor_renewed",  # new recovery codes
    mfa.authentication_failed: "account.second_factor_failed",
}


def audit_factor(action: str) -> Callable[..., None]:
    def receive(
        sender: object, request: HttpRequest, user: User, authenticator: Authenticator, **kw: Any
    ) -> None:
        audit(request, user, action, kind=authenticator.type)

    return receive


for signal, action in FACTOR_ACTIONS.items():
    signal.connect(audit_factor(action), weak=False, dispatch_uid=action)
