"""Per-tenant quotas on the control plane: workers, and deployments per hour."""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from .models import Tenant


class QuotaExceeded(Exception):
    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, for rate quotas


def check_new_worker(tenant: Tenant) -> None:
    limit = tenant.quota("max_workers")
    if tenant.workers.count() >= limit:
        raise QuotaExceeded(f"This tenant has reached its quota of {limit} workers.")


def check_deploy(tenant: Tenant) -> None:
    limit = tenant.quota("max_deployments_per_hour")
    window_start = timezone.now() - timedelta(hours=1)
    recent = tenant.deployments.filter(created__gte=window_start).order_by("created")
    if recent.count() >= limit:
        oldest = recent.values_list("created", flat=True)[0]
        wait = int((oldest + timedelta(hours=1) - timezone.now()).total_seconds()) + 1
        raise QuotaExceeded(
            f"This tenant has reached its quota of {limit} deployments per hour; "
            f"try again in {wait} s.",
            retry_after=max(wait, 1),
        )


@dataclass
class Usage:
    name: str
    used: int | None
    limit: int


def usage(tenant: Tenant, calls_this_minute: int | None) -> list[Usage]:
    """What the tenant uses of its quotas; its calls of the current minute (the window the
    runtime counts them in) are read by the caller from the figures it keeps."""
    now = timezone.now()
    return [
        Usage("Workers", tenant.workers.count(), tenant.quota("max_workers")),
        Usage(
            "Deployments in the last hour",
            tenant.deployments.filter(created__gte=now - timedelta(hours=1)).count(),
            tenant.quota("max_deployments_per_hour"),
        ),
        Usage(
            "Invocations this minute",
            calls_this_minute,
            tenant.quota("max_invocations_per_minute"),
        ),
        Usage("Largest request body (bytes)", None, tenant.quota("max_payload_bytes")),
    ]
