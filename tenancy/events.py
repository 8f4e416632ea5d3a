"""Events: what happened to a tenant's things, for its own systems and for its members who
asked to hear about them by mail. `emit` is called where it happens, inside the transaction
that makes it so (an event is never sent for a change that rolled back); it stores the event
and one delivery per subscription that wants it, and telemetry.webhooks sends them; members
who want it are mailed by telemetry.notices. A tenant without subscriptions stores nothing."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from .models import Delivery, Event, EventSubscription, Membership

# Every type, with what it means (shown in the portal, the API's description and the docs).
TYPES = {
    "deployment.created": "A deployment was created and its build queued.",
    "deployment.ready": "A deployment's build succeeded; it serves its own URL.",
    "deployment.failed": "A deployment's build failed (its problems are in `error`).",
    "deployment.promoted": "A deployment became its worker's production.",
    "deployment.rolled_back": "An earlier deployment became its worker's production again.",
    "canary.rolled_back": "A canary ended without promotion: by its rule, or by a member.",
    "run.dead": "A run spent its attempts and was kept as a dead letter.",
    "schedule.failed": "A run started by a schedule failed or became a dead letter.",
    "quota.reached": "Something was refused because the tenant reached a quota.",
}
# A quota refused many times in a row is told once an hour, not once per refusal.
QUOTA_QUIET = timedelta(hours=1)


def emit(
    tenant_id: int, event_type: str, data: dict[str, Any] | Callable[[], dict[str, Any]]
) -> Event | None:
    """`data` may be a callable: it is made only when a subscription or a member wants the
    event (every build and failed run emits; most tenants subscribe to nothing)."""
    assert event_type in TYPES, event_type
    subscriptions = [
        s for s in EventSubscription.objects.filter(tenant_id=tenant_id) if s.wants(event_type)
    ]
    watchers = [
        m.user_id
        for m in Membership.objects.filter(tenant_id=tenant_id)
        .exclude(notify=[])
        .only("user_id", "notify")
        if event_type in m.notify
    ]
    if not subscriptions and not watchers:
        return None
    made = data() if callable(data) else data
    # Sent once committed rather than at the next tick (by name: telemetry sends, above us).
    if watchers:
        transaction.on_commit(lambda: current_app.send_task(
            "telemetry.tasks.mail_notices", args=[tenant_id, event_type, made, watchers]
        ))  # fmt: skip
    if not subscriptions:
        return None
    event = Event.objects.create(tenant_id=tenant_id, type=event_type, data=made)
    Delivery.objects.bulk_create(
        Delivery(subscription=s, event=event, tenant_id=tenant_id) for s in subscriptions
    )
    transaction.on_commit(lambda: current_app.send_task("telemetry.tasks.deliver_events"))
    return event


def quota_reached(tenant_id: int, quota: str, message: str) -> None:
    recent = Event.objects.filter(
        tenant_id=tenant_id, type="quota.reached", data__quota=quota,
        created__gte=timezone.now() - QUOTA_QUIET,
    )  # fmt: skip
    if not recent.exists():
        emit(tenant_id, "quota.reached", {"quota": quota, "message": message})
