from django.contrib import admin

from .models import ApiKey, Domain, DomainRoute, Worker, WorkerSecret


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "production", "created"]
    list_filter = ["tenant"]
    search_fields = ["name", "tenant__slug", "tenant__name", "code"]
    # What production serves moves by promoting (portal, API), audited there, and only ever
    # to one of the worker's own deployments.
    readonly_fields = ["code", "created", "production", "canary"]

    def get_readonly_fields(self, request, obj=None):
        # A worker's deployments, lines and runs belong to its tenant: it never moves.
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "tenant", "scopes", "last_used_at", "revoked_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "prefix", "tenant__slug"]
    readonly_fields = ["prefix", "secret_hash", "created", "last_used_at", "created_by"]


@admin.register(WorkerSecret)
class WorkerSecretAdmin(admin.ModelAdmin):
    list_display = ["name", "worker", "updated"]
    search_fields = ["name", "worker__name"]
    readonly_fields = ["worker", "name", "updated"]
    exclude = ["value_encrypted"]  # write-only, even for operators

    def has_add_permission(self, request):
        return False


class DomainRouteInline(admin.TabularInline):
    model = DomainRoute
    extra = 0
    readonly_fields = ["prefix", "worker"]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    """Operators see every tenant's domains and may remove one (an abuse report); tenants
    add and verify them themselves."""

    list_display = ["hostname", "tenant", "status", "verified_at", "failing_since", "checked_at"]
    list_filter = ["status", "tenant"]
    search_fields = ["hostname", "tenant__slug"]
    readonly_fields = ["tenant", "hostname", "token", "status", "verified_at", "failing_since",
                       "last_error", "checked_at", "next_check_at", "added_by", "created"]  # fmt: skip
    inlines = [DomainRouteInline]

    def has_add_permission(self, request):
        return False
