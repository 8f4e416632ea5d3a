"""Single sign-on in the portal: an owner sets the tenant's OpenID Connect provider, chooses
the verified email domains it speaks for and the role of the members it brings, and may
require it; anyone signs in by their address (routed to their company's provider), and a
member of a tenant that requires it is sent there (sso.middleware)."""

from typing import cast

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from requests import RequestException

from sso import providers
from sso.models import SingleSignOn
from sso.rules import passed
from tenancy.access import Action, can
from tenancy.audit import record
from tenancy.models import Membership, Tenant
from workers.models import Domain

from .access import require


class ProviderForm(forms.Form):
    issuer = forms.URLField(max_length=500, assume_scheme="https", help_text=(
        "The provider's issuer URL, as it states it (its discovery document lives at "
        "<issuer>/.well-known/openid-configuration)."))  # fmt: skip
    client_id = forms.CharField(max_length=255, label="Client ID")
    client_secret = forms.CharField(
        max_length=500, required=False, widget=forms.PasswordInput, label="Client secret",
        help_text="Kept encrypted and never shown again; leave empty to keep the stored one.",
    )  # fmt: skip
    domains = forms.ModelMultipleChoiceField(
        queryset=Domain.objects.none(), widget=forms.CheckboxSelectMultiple,
        label="Email domains it signs in", required=False,
    )  # fmt: skip
    role = forms.ChoiceField(
        choices=[(r.value, r.label) for r in providers.ROLES], initial=Membership.Role.DEVELOPER,
        label="Role of the members it adds",
    )  # fmt: skip

    def __init__(self, tenant: Tenant, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelMultipleChoiceField, self.fields["domains"])
        field.queryset = Domain.objects.filter(tenant=tenant, status=Domain.Status.VERIFIED)


def callback_url(request, tenant: Tenant) -> str:
    return request.build_absolute_uri(
        reverse("openid_connect_callback", kwargs={"provider_id": tenant.slug})
    )


@login_required
def settings_page(request) -> HttpResponse:
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    require(request, Action.MANAGE, tenant, viewing=True)
    current = SingleSignOn.objects.filter(tenant=tenant).first()
    initial = {}
    if current is not None:
        initial = {"issuer": current.issuer, "client_id": current.client_id, "role": current.role,
                   "domains": list(current.domains.all())}  # fmt: skip
    form = ProviderForm(tenant, request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        require(request, Action.OWN, tenant)
        if form.is_valid():
            data = form.cleaned_data
            try:
                providers.configure(
                    tenant, issuer=data["issuer"], client_id=data["client_id"],
                    client_secret=data["client_secret"], domains=list(data["domains"]),
                    role=data["role"], by=request.principal.label,
                )  # fmt: skip
            except providers.SsoError as exc:
                form.add_error(None, str(exc))
            else:
                record(request, tenant, "tenant.single_sign_on", data["issuer"],
                       domains=sorted(d.hostname for d in data["domains"]), role=data["role"])  # fmt: skip
                messages.success(request, "Single sign-on is set up: people at "
                                 f"{', '.join(sorted(d.hostname for d in data['domains']))} "
                                 "can sign in with it now.")  # fmt: skip
                return redirect("single-sign-on")
        status = 400
    context = {
        "form": form,
        "current": current,
        "callback_url": callback_url(request, tenant),
        "may_own": can(request.principal, Action.OWN, tenant),
        "signed_in_here": tenant.pk in passed(request.session),
        "has_verified": Domain.objects.filter(
            tenant=tenant, status=Domain.Status.VERIFIED
        ).exists(),
    }
    return render(request, "sso/settings.html", context, status=status)


@login_required
@require_POST
def require_sso(request) -> HttpResponse:
    """An owner requires (or stops requiring) single sign-on of every member; only from a
    session the provider signed in, so that turning it on never locks them out."""
    tenant = request.tenant
    if tenant is None:
        raise Http404("No tenant.")
    require(request, Action.OWN, tenant)
    wanted = request.POST.get("required") == "on"
    if wanted and not SingleSignOn.objects.filter(tenant=tenant).exists():
        messages.error(request, "Set up the provider first.")
        return redirect("single-sign-on")
    if wanted and tenant.pk not in passed(request.session):
        messages.error(request, "Sign in through the provider yourself first (Sign in with "
                       "single sign-on), so that requiring it cannot lock you out.")  # fmt: skip
        return redirect("single-sign-on")
    if wanted != tenant.require_single_sign_on:
        tenant.require_single_sign_on = wanted
        tenant.save(update_fields=["require_single_sign_on"])
        record(request, tenant, "tenant.require_single_sign_on", tenant.slug, required=wanted)
        messages.success(request, "Every member now signs in through the provider to act here."
                         if wanted else "Members may sign in here any way they can.")  # fmt: skip
    return redirect("single-sign-on")


@login_required
@require_POST
def remove_sso(request) -> HttpResponse:
    tenant = request.tenant
    if tenant is None:
        raise Http404("No tenant.")
    require(request, Action.OWN, tenant)
    if providers.remove(tenant):
        record(request, tenant, "tenant.single_sign_on_removed", tenant.slug)
        messages.success(request, "Single sign-on is removed; the accounts it made stay, and "
                         "sign in with a password reset or passkey.")  # fmt: skip
    return redirect("single-sign-on")


def start(request, sso: SingleSignOn, next_url: str = "") -> HttpResponse:
    """Sends the browser to the tenant's provider (the callback comes back to allauth)."""
    provider = get_adapter().get_provider(request, sso.tenant.slug)
    safe = url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure())
    try:
        return provider.redirect(request, process="login", next_url=next_url if safe else None)
    except (RequestException, OAuth2Error) as exc:
        reason = f"{sso.tenant.name}'s identity provider could not be reached ({exc})."
        return render(request, "sso/refused.html", {"reason": reason, "sso": sso}, status=502)


def sign_in(request) -> HttpResponse:
    """ "Sign in with single sign-on": the address says whose provider."""
    email = request.POST.get("email", "").strip()
    error = ""
    if request.method == "POST":
        sso = providers.for_email(email) if "@" in email else None
        if sso is not None:
            return start(request, sso, request.POST.get("next", ""))
        error = (
            f"No single sign-on is set up for {providers.domain_of(email) or 'that address'}: "
            "sign in with your password or passkey."
            if "@" in email
            else "Give your work email address."
        )
    context = {"email": email, "error": error, "next": request.GET.get("next", "")}
    return render(request, "sso/sign_in.html", context, status=400 if error else 200)


def continue_to(request, slug: str) -> HttpResponse:
    """Where a member of a tenant that requires single sign-on is sent (sso.middleware)."""
    sso = providers.for_provider(slug)
    if sso is None or not (request.user.is_authenticated and Membership.objects.filter(
        user=request.user, tenant=sso.tenant
    ).exists()):  # fmt: skip
        raise Http404("No such single sign-on.")
    if request.method == "POST":
        return start(request, sso, request.POST.get("next", ""))
    return render(request, "sso/continue.html", {"sso": sso})
