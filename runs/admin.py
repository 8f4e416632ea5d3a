from django.contrib import admin

from tenancy.admin import Record

from .models import Run, RunAttempt

ATTEMPT_FIELDS = ("number", "deployment", "outcome", "status_code", "error_code", "duration_ms", "started_at", "request_id")  # fmt: skip


class RunAttemptInline(admin.TabularInline):
    model = RunAttempt
    extra = 0
    can_delete = False
    fields = ATTEMPT_FIELDS
    readonly_fields = ATTEMPT_FIELDS

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(Record):
    """Durable calls: stored, attempted and finished by the platform."""

    list_display = ["code", "tenant", "function", "status", "attempts", "trigger", "created"]
    list_filter = ["status", "trigger", "tenant"]
    search_fields = ["code", "function", "idempotency_key"]
    inlines = [RunAttemptInline]
