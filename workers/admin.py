from django.contrib import admin

from .models import ApiKey, Worker, WorkerSecret


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "production", "created"]
    list_filter = ["tenant"]
    search_fields = ["name", "tenant__slug", "tenant__name", "code"]
    readonly_fields = ["code", "created"]
    raw_id_fields = ["production"]


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
