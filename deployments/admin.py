from django.contrib import admin

from workers_portal.admin import Record

from .models import (
    Artifact,
    Deployment,
    Invocation,
    LogEntry,
    ProductionChange,
    Release,
    ReleaseItem,
    Run,
    RunAttempt,
    UsageDay,
)


@admin.register(Deployment)
class DeploymentAdmin(Record):
    """Immutable: a change is a new deployment, made by deploying (which builds it)."""

    list_display = ["short_id", "worker", "tenant", "status", "backend", "created", "finished_at"]
    list_filter = ["status", "backend", "tenant"]
    search_fields = ["short_id", "code", "worker__name", "tenant__slug", "backend_id"]
    exclude = ["secrets_sealed"]  # sealed secrets are nobody's reading


@admin.register(Invocation)
class InvocationAdmin(Record):
    list_display = [
        "request_id",
        "function",
        "deployment",
        "status",
        "trigger",
        "duration_ms",
        "started_at",
    ]
    list_filter = ["status", "trigger", "tenant"]
    search_fields = ["request_id", "function", "deployment__short_id"]


@admin.register(LogEntry)
class LogEntryAdmin(Record):
    list_display = ["timestamp", "level", "function", "request_id", "seq", "message"]
    list_filter = ["level", "tenant"]
    search_fields = ["request_id", "message", "function"]


@admin.register(Artifact)
class ArtifactAdmin(Record):
    list_display = ["sha256", "size", "created"]
    search_fields = ["sha256"]


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


class RunAttemptInline(admin.TabularInline):
    model = RunAttempt
    extra = 0
    can_delete = False
    fields = ["number", "deployment", "outcome", "status_code", "error_code", "duration_ms", "started_at", "request_id"]  # fmt: skip
    readonly_fields = fields

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


@admin.register(UsageDay)
class UsageDayAdmin(Record):
    """What each tenant used per day (UTC), for billing; kept 13 months."""

    list_display = ["day", "tenant", "invocations", "gb_seconds", "build_seconds", "cpu_seconds", "log_lines", "log_bytes", "runs"]  # fmt: skip
    list_filter = ["tenant", "day"]
    date_hierarchy = "day"
