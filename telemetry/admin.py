from django.contrib import admin

from tenancy.admin import Record

from .models import Invocation, LogEntry, UsageDay


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


@admin.register(UsageDay)
class UsageDayAdmin(Record):
    """What each tenant used per day (UTC), for billing; kept 13 months."""

    list_display = ["day", "tenant", "invocations", "gb_seconds", "build_seconds", "cpu_seconds", "log_lines", "log_bytes", "runs"]  # fmt: skip
    list_filter = ["tenant", "day"]
    date_hierarchy = "day"
