"""Events sent to tenants' URLs (tenancy.events stores them with one delivery per
subscription). Each delivery is a JSON POST signed as Standard Webhooks specify, so any of
their libraries verifies it: `webhook-id` (the event's id, the same on every attempt: drop
what you have seen), `webhook-timestamp` (seconds; refuse old ones) and `webhook-signature`
(`v1,` and base64 of HMAC-SHA256 over `id.timestamp.body`, keyed with the subscription's
secret). Failed attempts are retried with backoff up to EVENT_ATTEMPTS; a member may
redeliver any delivery. The sending is the drains' (telemetry.outbound)."""

import base64
import json
import secrets
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from tenancy.events import TYPES
from tenancy.models import Delivery, Event, EventSubscription, Tenant
from tenancy.quotas import check_room

from .outbound import Refused, backoff, check_public, post

SENDS = "events are sent"
BATCH = 200  # deliveries per tick


def check_types(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - TYPES.keys())
    if unknown:
        raise Refused(f"Unknown event types: {', '.join(unknown)}. Known: {', '.join(TYPES)}.")
    return sorted(set(types))


def new_subscription(tenant: Tenant, url: str, types: list[str], by: str) -> EventSubscription:
    """Refused for a URL events may not reach or an unknown type, QuotaExceeded past the
    tenant's quota."""
    check_room(tenant, "max_event_subscriptions")
    check_public(url, SENDS)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    return EventSubscription.objects.create(
        tenant=tenant, url=url, types=check_types(types), secret=secret, created_by=by
    )


def body_of(event: Event) -> bytes:
    envelope = {
        "id": event.webhook_id,
        "type": event.type,
        "timestamp": event.created.isoformat(),
        "tenant": event.tenant.slug,
        "data": event.data,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def headers_for(subscription: EventSubscription, event: Event, body: bytes) -> dict[str, str]:
    now = timezone.now()
    return {
        "content-type": "application/json",
        "user-agent": "functions-platform-events/1",
        "webhook-id": event.webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(subscription.secret).sign(event.webhook_id, now, body),
    }


def deliver(delivery: Delivery) -> bool:
    """One attempt of `delivery` (locked by the caller); True when it was taken."""
    subscription, event = delivery.subscription, delivery.event
    body = body_of(event)
    answer = post(subscription.url, body, headers_for(subscription, event, body), SENDS)
    now = timezone.now()
    attempts = delivery.attempts + 1
    fields: dict[str, object] = {
        "attempts": attempts, "status_code": answer.status_code, "answer": answer.text,
        "error": answer.error, "duration_ms": answer.ms,
    }  # fmt: skip
    if answer.ok:
        fields.update(status=Delivery.Status.DELIVERED, delivered_at=now)
        EventSubscription.objects.filter(pk=subscription.pk).update(
            failures=0, last_error="", last_delivered_at=now
        )
    else:
        spent = attempts >= settings.EVENT_ATTEMPTS
        fields.update(
            status=Delivery.Status.FAILED if spent else Delivery.Status.PENDING,
            next_attempt_at=now + timedelta(seconds=backoff(attempts, cap=3600.0, base=15.0)),
        )
        failures = subscription.failures + 1
        paused = failures >= settings.EVENT_MAX_FAILURES
        EventSubscription.objects.filter(pk=subscription.pk).update(
            failures=failures, last_error=answer.error,
            status=EventSubscription.Status.PAUSED if paused else subscription.status,
        )  # fmt: skip
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    return answer.ok


def deliver_due() -> int:
    """An attempt of every delivery that is due, to subscriptions not paused; how many were
    taken. A delivery is attempted by one process at a time (skip locked)."""
    delivered = 0
    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=timezone.now(),
        subscription__status=EventSubscription.Status.ACTIVE,
    ).order_by("next_attempt_at", "id")
    for pk in list(due.values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            delivery = (
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("subscription", "event__tenant")
                .filter(pk=pk, status=Delivery.Status.PENDING)
                .first()
            )
            if delivery is not None and delivery.subscription.status == "active":
                delivered += deliver(delivery)
    return delivered


def redeliver(delivery: Delivery) -> None:
    """Send it again at once, with its attempts anew (the same event: the same webhook-id)."""
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    send_soon()


def resume(subscription: EventSubscription) -> None:
    EventSubscription.objects.filter(pk=subscription.pk).update(
        status=EventSubscription.Status.ACTIVE, failures=0
    )
    send_soon()


def ping(subscription: EventSubscription, by: str) -> Delivery:
    """A `ping` event to this subscription only, to try the receiving end."""
    with transaction.atomic():
        event = Event.objects.create(tenant_id=subscription.tenant_id, type="ping", data={"by": by})
        delivery = Delivery.objects.create(
            subscription=subscription, event=event, tenant_id=subscription.tenant_id
        )
    send_soon()
    return delivery


def send_soon() -> None:
    """The tick's work now rather than within EVENT_TICK_SECONDS (by name: tasks import us)."""
    transaction.on_commit(lambda: current_app.send_task("telemetry.tasks.deliver_events"))


def forget_old() -> int:
    """Events (and their deliveries) older than EVENT_RETENTION_DAYS; how many went."""
    cutoff = timezone.now() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    return Event.objects.filter(created__lt=cutoff).delete()[1].get("tenancy.Event", 0)
