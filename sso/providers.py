"""Tenants' providers as allauth sees them, which provider an address belongs to, and the
checks an owner's settings pass before they are kept: the issuer answers OIDC discovery for
itself, and every URL the platform fetches from it is public (an owner cannot point the
control plane at its own network)."""

from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.db import transaction

from telemetry.outbound import Refused, check_public
from tenancy.models import Membership, Tenant
from workers.models import Domain
from workers.secrets import decrypt, encrypt

from .models import SingleSignOn

DISCOVERY = "/.well-known/openid-configuration"
ROLES = [Membership.Role.ADMIN, Membership.Role.DEVELOPER, Membership.Role.VIEWER]


class SsoError(ValueError):
    """Why a provider cannot be used, for people."""


def for_provider(provider_id: str) -> SingleSignOn | None:
    """The provider allauth knows as `provider_id` (its tenant's slug)."""
    return SingleSignOn.objects.select_related("tenant").filter(tenant__slug=provider_id).first()


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def for_email(email: str) -> SingleSignOn | None:
    """The provider that speaks for this address: its tenant holds the address's domain,
    verified (a verified name has one holder, so at most one provider answers)."""
    domain = domain_of(email)
    if not domain:
        return None
    return (
        SingleSignOn.objects.select_related("tenant")
        .filter(domains__hostname=domain, domains__status=Domain.Status.VERIFIED)
        .first()
    )


def speaks_for(sso: SingleSignOn, email: str) -> bool:
    return sso.domains.filter(hostname=domain_of(email), status=Domain.Status.VERIFIED).exists()


def allowed_domains(sso: SingleSignOn) -> list[str]:
    return sorted(sso.domains.values_list("hostname", flat=True))


def social_app(sso: SingleSignOn) -> SocialApp:
    """allauth's view of the provider (never stored: the tenant's row is the one truth)."""
    return SocialApp(
        provider="openid_connect",
        provider_id=sso.tenant.slug,
        name=sso.tenant.name,
        client_id=sso.client_id,
        secret=decrypt(sso.client_secret),
        settings={"server_url": sso.issuer, "oauth_pkce_enabled": True},
    )


def check_url(url: str) -> None:
    """Refused unless the platform may fetch `url` (public, http(s); https outside DEBUG)."""
    if urlsplit(url).scheme != "https" and not (settings.DEBUG or settings.SSO_ALLOW_HTTP):
        raise Refused("Use an https:// URL.")
    check_public(url, "the platform signs in only through providers at public addresses",
                 allow_private=settings.SSO_ALLOW_PRIVATE_ISSUERS)  # fmt: skip


class PublicSession(requests.Session):
    """What allauth fetches from a provider (discovery, token, keys, user info): public
    addresses only, no redirects, a bounded wait."""

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        try:
            check_url(text)
        except Refused as exc:
            raise requests.ConnectionError(str(exc)) from exc
        kwargs["allow_redirects"] = False
        kwargs.setdefault("timeout", settings.SSO_TIMEOUT_SECONDS)
        return super().request(method, text, *args, **kwargs)


def discover(issuer: str) -> dict[str, Any]:
    """The provider's OIDC discovery document, checked as the specification asks: it names
    this issuer and the endpoints the sign-in needs."""
    issuer = issuer.strip().rstrip("/")
    url = f"{issuer}{DISCOVERY}"
    try:
        check_url(url)
        answer = httpx.get(url, timeout=settings.SSO_TIMEOUT_SECONDS, follow_redirects=False)
    except Refused as exc:
        raise SsoError(f"The issuer cannot be used: {exc}") from None
    except httpx.HTTPError as exc:
        raise SsoError(
            f"The issuer did not answer at {url}: {exc or exc.__class__.__name__}."
        ) from None
    if answer.status_code != 200:
        raise SsoError(f"The issuer answered {answer.status_code} at {url}: is it the provider's "
                       "issuer URL (its discovery document lives under it)?")  # fmt: skip
    try:
        found = answer.json()
    except ValueError:
        raise SsoError(f"{url} did not answer JSON: not an OpenID Connect provider.") from None
    if not isinstance(found, dict):
        raise SsoError(f"{url} did not answer a discovery document.")
    if str(found.get("issuer", "")).rstrip("/") != issuer:
        raise SsoError(f"The provider calls itself {found.get('issuer')!r}, not {issuer!r}: "
                       "give the issuer exactly as it states it.")  # fmt: skip
    missing = [
        key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
        if not isinstance(found.get(key), str)
    ]  # fmt: skip
    if missing:
        raise SsoError(f"The provider's discovery document lacks {', '.join(missing)}.")
    return found


def configure(
    tenant: Tenant, *, issuer: str, client_id: str, client_secret: str, domains: list[Domain],
    role: str, by: str,
) -> SingleSignOn:  # fmt: skip
    """Keeps an owner's settings once the provider answers for itself; an empty secret keeps
    the one stored."""
    issuer = issuer.strip().rstrip("/")
    discover(issuer)
    if role not in ROLES:
        raise SsoError("Members the provider adds are admins, developers or viewers.")
    if any(d.tenant_id != tenant.pk or d.status != Domain.Status.VERIFIED for d in domains):
        raise SsoError("Each email domain must be one of this tenant's verified domains.")
    if not domains:
        raise SsoError("Choose at least one email domain (verify it on Domains first).")
    current = SingleSignOn.objects.filter(tenant=tenant).first()
    if not client_secret and current is None:
        raise SsoError("Give the client secret the provider issued.")
    with transaction.atomic():
        sso, _ = SingleSignOn.objects.update_or_create(
            tenant=tenant,
            defaults={
                "issuer": issuer, "client_id": client_id.strip(), "role": role, "updated_by": by,
                **({"client_secret": encrypt(client_secret)} if client_secret else {}),
            },
        )  # fmt: skip
        sso.domains.set(domains)
    return sso


def remove(tenant: Tenant) -> bool:
    """Stops the tenant's single sign-on (and so its requirement: sso.receivers); accounts
    stay."""
    deleted, _ = SingleSignOn.objects.filter(tenant=tenant).delete()
    tenant.require_single_sign_on = False
    return bool(deleted)
