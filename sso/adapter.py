"""How allauth's social sign-in behaves here: the only providers are tenants' own (found by
the tenant's slug, never listed together); a provider signs in only addresses at its tenant's
verified domains that it vouches for; the account that proved that address is linked to it
(an account that uses it unproven is refused: anyone may type an address), a new person
gets an account; either way the person becomes a member of the tenant
(just in time, with the role the owner chose) unless the tenant is suspended."""

from typing import Any

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.shortcuts import render

from accounts.addresses import proven_holder
from tenancy.access import acts
from tenancy.models import Membership

from . import providers
from .models import SingleSignOn
from .rules import passed


def refuse(request: HttpRequest, reason: str, sso: SingleSignOn | None = None) -> None:
    raise ImmediateHttpResponse(
        render(request, "sso/refused.html", {"reason": reason, "sso": sso}, status=403)
    )


def vouched_email(sociallogin: SocialLogin) -> str:
    for address in sociallogin.email_addresses:
        if address.verified and address.email:
            return str(address.email).strip()
    return ""


class Adapter(DefaultSocialAccountAdapter):
    def list_apps(
        self, request: HttpRequest | None, provider: str | None = None, client_id: str | None = None
    ) -> list[SocialApp]:
        if not provider or provider == "openid_connect":
            return []  # tenants' providers are never shown side by side
        sso = providers.for_provider(provider)
        return [providers.social_app(sso)] if sso else []

    def get_requests_session(self) -> providers.PublicSession:
        return providers.PublicSession()

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True  # (pre_social_login has refused whoever the provider may not bring)

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        sso = providers.for_provider(sociallogin.account.provider)
        if sso is None:
            refuse(request, "This single sign-on is no longer set up.")
            return
        email = vouched_email(sociallogin)
        if not email:
            refuse(request, f"{sso.tenant.name}'s provider did not give an email address it "
                            "has verified, so the platform cannot tell who you are.", sso)  # fmt: skip
        if not providers.speaks_for(sso, email):
            domains = ", ".join(providers.allowed_domains(sso)) or "none"
            refuse(request, f"{sso.tenant.name} signs in addresses at {domains} through its "
                            f"provider; {email} is not one of them.", sso)  # fmt: skip
        if not sociallogin.is_existing:
            holder = proven_holder(email)
            if holder is not None:
                sociallogin.connect(request, holder)  # the provider vouches for the address
            elif User.objects.filter(email__iexact=email).exists():
                refuse(request, f"An account here uses {email} but has not confirmed it: sign "
                                "in to it another way, confirm the address (Your account, Email), "
                                "then sign in with single sign-on.", sso)  # fmt: skip
        user = sociallogin.user
        if (
            user is not None
            and user.pk
            and not Membership.objects.filter(user=user, tenant=sso.tenant).exists()
        ):
            if not acts(sso.tenant):
                refuse(request, f"{sso.tenant.name} is suspended: nobody joins it now.", sso)
            Membership.objects.create(user=user, tenant=sso.tenant, role=sso.role)
        if user is not None and request.user.is_authenticated and request.user.pk == user.pk:
            # Signing in again ends this session; the providers it had passed are kept.
            sociallogin.state["sso_kept"] = passed(request.session)

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> User:
        sso = providers.for_provider(sociallogin.account.provider)
        assert sso is not None  # (pre_social_login refused otherwise)  # noqa: S101
        if not acts(sso.tenant):
            refuse(request, f"{sso.tenant.name} is suspended: nobody joins it now.", sso)
        user: User = super().save_user(request, sociallogin, form)
        Membership.objects.get_or_create(user=user, tenant=sso.tenant, defaults={"role": sso.role})
        return user

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        name = getattr(provider, "name", "The identity provider")
        if exception is not None:
            reason = f"{name} could not be reached or answered wrongly ({exception})."
        elif error == "cancelled":
            reason = f"Signing in with {name} was cancelled."
        else:
            reason = f"{name} refused the sign-in ({error or 'no reason given'})."
        sso = providers.for_provider(getattr(getattr(provider, "app", None), "provider_id", ""))
        refuse(request, reason, sso)
