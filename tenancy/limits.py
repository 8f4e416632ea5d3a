"""Runtime limits: platform defaults in settings, overridden per tenant, then per worker.

Operators set the overrides in the admin (a tenant's members cannot raise their own).
"""

from django.conf import settings
from django.db import models

# field -> the setting holding the platform default
DEFAULTS = {
    "timeout_seconds": "RUNTIME_TIMEOUT_SECONDS",
    "cpu_ms": "RUNTIME_CPU_MS",
    "memory_mb": "RUNTIME_MEMORY_MB",
    "max_concurrency": "RUNTIME_MAX_CONCURRENCY",
    "max_result_bytes": "RUNTIME_MAX_RESULT_BYTES",
    "max_log_lines": "RUNTIME_MAX_LOG_LINES",
    "max_line_bytes": "RUNTIME_MAX_LINE_BYTES",
}


def override(field, help_text):
    return field(null=True, blank=True, help_text=help_text + " Blank: inherited.")


class RuntimeLimits(models.Model):
    timeout_seconds = override(models.FloatField, "Wall-clock limit of one invocation (seconds).")
    cpu_ms = override(
        models.PositiveIntegerField,
        "CPU time an invocation may hold its isolate without a pause (ms); waiting on fetch or "
        "timers does not count.",
    )
    memory_mb = override(models.PositiveIntegerField, "Heap limit of a deployment's isolate (MB).")
    max_concurrency = override(
        models.PositiveIntegerField, "Invocations one deployment runs at once."
    )
    max_result_bytes = override(models.PositiveIntegerField, "Largest result (bytes).")
    max_log_lines = override(models.PositiveIntegerField, "Console lines kept per invocation.")
    max_line_bytes = override(models.PositiveIntegerField, "Longest console line (bytes).")

    class Meta:
        abstract = True


def effective_limits(worker) -> dict:
    """The limits a worker's deployments run with: the worker's, else its tenant's, else the
    platform's."""
    limits = {}
    for field, setting in DEFAULTS.items():
        for owner in (worker, worker.tenant):
            value = getattr(owner, field)
            if value is not None:
                break
        else:
            value = getattr(settings, setting)
        limits[field] = value
    return limits
