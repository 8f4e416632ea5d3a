from django.contrib import admin

from tenancy.admin import Record

from .models import ProductionChange, Release, ReleaseItem


@admin.register(ProductionChange)
class ProductionChangeAdmin(Record):
    """Every change of what a production URL serves, one tenant generation at a time."""

    list_display = ["worker", "generation", "production", "canary", "canary_percent", "how", "by", "created"]  # fmt: skip
    list_filter = ["how", "tenant"]
    search_fields = ["worker__name", "tenant__slug", "by"]


class ReleaseItemInline(admin.TabularInline):
    model = ReleaseItem
    extra = 0
    can_delete = False
    readonly_fields = ["worker", "deployment"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Release)
class ReleaseAdmin(Record):
    """Releases are made and promoted by tenants (portal, API); operators look."""

    list_display = ["name", "tenant", "status", "created_by", "created", "promoted_at"]
    list_filter = ["status", "tenant"]
    search_fields = ["name", "tenant__slug"]
    inlines = [ReleaseItemInline]
