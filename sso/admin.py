"""Operators see which tenants sign in through their own provider, and can remove one (a
tenant locked out by a broken provider it requires). The provider's apps and tokens of
allauth's own admin are not used here: tenants' providers live in their rows."""

from allauth.socialaccount.models import SocialApp, SocialToken
from django.contrib import admin
from django.http import HttpRequest

from .models import SingleSignOn

admin.site.unregister(SocialApp)
admin.site.unregister(SocialToken)


@admin.register(SingleSignOn)
class SingleSignOnAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["tenant", "issuer", "role", "updated", "updated_by"]
    search_fields = ["tenant__slug", "tenant__name", "issuer"]
    # (set by the tenant's owners; the secret is never shown)
    fields = readonly_fields = ("tenant", "issuer", "client_id", "role", "updated", "updated_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
