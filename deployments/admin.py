from django.contrib import admin

from .models import (
    Artifact,
    Deployment,
    Invocation,
    LogEntry,
    ProductionChange,
    Release,
    ReleaseItem,
    UsageDay,
)


class WrittenBySystem(admin.ModelAdmin):
    """Records the platform writes (invocations, log lines, artifacts): operators read them,
    and may delete them, but never add or edit one."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ["short_id", "worker", "tenant", "status", "backend", "created", "finished_at"]
    list_filter = ["status", "backend", "tenant"]
    search_fields = ["short_id", "code", "worker__name", "tenant__slug", "deployment_id"]
    # A deployment is immutable: everything but its status is shown, never edited here.
    readonly_fields = [
        "code", "short_id", "worker", "tenant", "status", "created_by", "source", "source_hash",
        "backend", "functions", "artifact", "deployment_id", "deployment_url", "build_log",
        "backend_state", "build_attempts", "created", "updated", "started_at", "finished_at",
        "error_message",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False  # deployments are made by deploying, which also builds them


@admin.register(Invocation)
class InvocationAdmin(WrittenBySystem):
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
    readonly_fields = [f.name for f in Invocation._meta.fields]


@admin.register(LogEntry)
class LogEntryAdmin(WrittenBySystem):
    list_display = ["timestamp", "level", "function", "request_id", "seq", "message"]
    list_filter = ["level", "tenant"]
    search_fields = ["request_id", "message", "function"]
    readonly_fields = [f.name for f in LogEntry._meta.fields]


@admin.register(Artifact)
class ArtifactAdmin(WrittenBySystem):
    list_display = ["sha256", "size", "created"]
    search_fields = ["sha256"]
    readonly_fields = ["sha256", "size", "created", "content"]


@admin.register(ProductionChange)
class ProductionChangeAdmin(WrittenBySystem):
    """Every change of what a production URL serves, one tenant generation at a time."""

    list_display = ["worker", "generation", "production", "canary", "canary_percent", "how", "by", "created"]  # fmt: skip
    list_filter = ["how", "tenant"]
    search_fields = ["worker__name", "tenant__slug", "by"]
    readonly_fields = [f.name for f in ProductionChange._meta.fields]


class ReleaseItemInline(admin.TabularInline):
    model = ReleaseItem
    extra = 0
    can_delete = False
    readonly_fields = ["worker", "deployment"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Release)
class ReleaseAdmin(WrittenBySystem):
    """Releases are made and promoted by tenants (portal, API); operators look."""

    list_display = ["name", "tenant", "status", "created_by", "created", "promoted_at"]
    list_filter = ["status", "tenant"]
    search_fields = ["name", "tenant__slug"]
    readonly_fields = [f.name for f in Release._meta.fields]
    inlines = [ReleaseItemInline]


@admin.register(UsageDay)
class UsageDayAdmin(WrittenBySystem):
    """What each tenant used per day (UTC), for billing; kept 13 months."""

    list_display = ["day", "tenant", "invocations", "gb_seconds", "build_seconds", "log_lines", "log_bytes", "runs"]  # fmt: skip
    list_filter = ["tenant", "day"]
    date_hierarchy = "day"
    readonly_fields = [f.name for f in UsageDay._meta.fields]
