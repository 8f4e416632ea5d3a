"""A tenant's identity provider: where its people sign in, which addresses it speaks for, and
the role of the members it brings (docs/single-sign-on.md)."""

from django.db import models

from tenancy.models import Membership, Tenant
from workers.models import Domain


class SingleSignOn(models.Model):
    """One OpenID Connect provider per tenant. It is known to allauth by the tenant's slug
    (its redirect URI is /accounts/oidc/<slug>/login/callback/). It speaks only for addresses
    at `domains`, each a domain the tenant has verified by DNS, so that no tenant can sign in
    as someone whose address belongs to another."""

    tenant = models.OneToOneField(Tenant, models.CASCADE, related_name="single_sign_on")
    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret = models.TextField()  # encrypted (workers.secrets); never shown again
    domains = models.ManyToManyField(Domain, related_name="+")
    role = models.CharField(  # of the members it adds (never owner)
        max_length=16, choices=Membership.Role.choices, default=Membership.Role.DEVELOPER
    )
    updated = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "single sign-on"

    def __str__(self) -> str:
        return f"{self.tenant.slug}: {self.issuer}"
