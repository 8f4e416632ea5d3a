"""Per-tenant quotas on the control plane: what a tenant may hold (workers, schedules, keys,
drains, secrets, waiting runs), how fast it may deploy, and how large a payload it may have
stored. A count over its quota is a 409 (delete something first), a rate a 429 (wait), a
payload a 413; each message says the limit and how to get under it."""

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from .models import EventSubscription, Tenant


class QuotaExceeded(ValueError):
    def __init__(self, message: str, retry_after: int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, for rate quotas
        # 429 for a rate (wait), 409 for a count (delete something first), 413 for a size.
        self.status = status or (429 if retry_after is not None else 409)


# What a tenant holds, per quota: (its name for people, how many it holds now).
HELD = {
    "max_workers": ("workers", lambda t: t.workers.count()),
    "max_schedules": ("schedules", lambda t: t.schedules.count()),
    "max_api_keys": ("API keys", lambda t: t.api_keys.filter(revoked_at=None).count()),
    "max_drains": ("log drains", lambda t: t.log_drains.count()),
    "max_event_subscriptions": ("event subscriptions", lambda t: t.event_subscriptions.count()),
    "max_domains": ("domains", lambda t: t.domains.count()),
    "max_settings": ("plain settings", lambda t: _settings(t)),
    "max_kv_namespaces": ("key-value namespaces", lambda t: t.kv_namespaces.count()),
    "max_secrets": ("secrets", lambda t: _secrets(t)),
    "max_waiting_runs": (
        "runs waiting (queued or to be retried)",
        lambda t: t.runs.filter(status__in=("queued", "retrying")).count(),
    ),
}
# Waiting runs leave the quota as they run (one queue for all tenants): the caller may retry
# shortly (429) instead of removing one (409).
DRAINING = {"max_waiting_runs": ("retry once some have run", 30)}


def told(tenant: Tenant, quota: str, refusal: QuotaExceeded) -> QuotaExceeded:
    """The refusal, after telling the tenant's systems (event `quota.reached`). Through the
    queue, not this transaction: the refusal rolls the caller's transaction back."""
    from .tasks import quota_reached

    if EventSubscription.objects.filter(tenant_id=tenant.pk).exists():
        quota_reached.delay(tenant.pk, quota, refusal.message)
    return refusal


def told_calls_refused(tenant: Tenant) -> None:
    """A runtime host answered 429 to calls of this tenant (its invocations-per-minute quota):
    its systems hear it (at most once an hour), here, outside any refusal's transaction."""
    from .events import quota_reached

    if EventSubscription.objects.filter(tenant_id=tenant.pk).exists():
        limit = tenant.quota("max_invocations_per_minute")
        quota_reached(tenant.pk, "max_invocations_per_minute",
                      f"This tenant's quota of {limit} invocations a minute was used up; calls "
                      "over it were answered 429 until the next minute.")  # fmt: skip


def _settings(tenant: Tenant) -> int:
    return tenant.workers.aggregate(n=Count("plain_settings"))["n"]


def _secrets(tenant: Tenant) -> int:
    return tenant.workers.aggregate(n=Count("secrets"))["n"]


def check_room(tenant: Tenant, quota: str, adding: int = 1) -> None:
    """One more (or `adding` more) of what `quota` counts fits, or QuotaExceeded (409)."""
    noun, held = HELD[quota]
    remedy, retry_after = DRAINING.get(quota, ("remove one first", None))
    limit = tenant.quota(quota)
    if held(tenant) + adding > limit:
        raise told(
            tenant,
            quota,
            QuotaExceeded(
                f"This tenant has reached its quota of {limit} {noun}; {remedy}, or ask the "
                "platform's operators for a larger quota.",
                retry_after=retry_after,
            ),
        )


def check_stored_payload(tenant: Tenant, payload: str) -> None:
    limit = tenant.quota("max_stored_payload_bytes")
    size = len(payload.encode())
    if size > limit:
        raise told(tenant, "max_stored_payload_bytes", QuotaExceeded(
            f"The payload is {size} bytes; a payload that is stored (a run's or a schedule's) "
            f"may be at most {limit} bytes. Store large inputs elsewhere and pass a reference.",
            status=413,
        ))  # fmt: skip


def check_new_worker(tenant: Tenant) -> None:
    check_room(tenant, "max_workers")


def check_deploy(tenant: Tenant) -> None:
    limit = tenant.quota("max_deployments_per_hour")
    window_start = timezone.now() - timedelta(hours=1)
    recent = tenant.deployments.filter(created__gte=window_start).order_by("created")
    if recent.count() >= limit:
        oldest = recent.values_list("created", flat=True)[0]
        wait = int((oldest + timedelta(hours=1) - timezone.now()).total_seconds()) + 1
        raise told(
            tenant,
            "max_deployments_per_hour",
            QuotaExceeded(
                f"This tenant has reached its quota of {limit} deployments per hour; "
                f"try again in {wait} s.",
                retry_after=max(wait, 1),
            ),
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
        *(Usage(noun[0].upper() + noun[1:], held(tenant), tenant.quota(quota))
          for quota, (noun, held) in HELD.items() if quota != "max_workers"),
        Usage("Largest stored payload (bytes)", None, tenant.quota("max_stored_payload_bytes")),
        Usage("Key-value operations per minute", None, tenant.quota("max_kv_operations_per_minute")),
        Usage("Runs enqueued by code per minute", None, tenant.quota("max_enqueues_per_minute")),
    ]  # fmt: skip
