"""A tenant's event subscriptions and deliveries over the API (what the portal's Events page
does): subscribe a URL to event types (the signing secret answered once), list, ping,
resume, remove; list deliveries with their answers and redeliver one. `manage` scope,
audited. Only public addresses, as for drains (telemetry.outbound)."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from telemetry.outbound import Refused
from telemetry.webhooks import new_subscription, ping, redeliver, resume
from tenancy.access import Action
from tenancy.audit import record
from tenancy.events import TYPES
from tenancy.models import LABEL_PATTERN, Delivery, EventSubscription
from tenancy.quotas import QuotaExceeded

from .errors import ApiError, require
from .schemas import SPACE, ErrorOut, Strict
from .workers import tenant_for

router = Router(tags=["events"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
EventType = Literal[tuple(TYPES)]  # type: ignore[valid-type]
DESCRIBED = "; ".join(f"`{name}`: {meaning}" for name, meaning in TYPES.items())


class SubscriptionOut(Schema):
    id: UUID
    url: str
    types: list[str] = Field(description="The event types it receives; empty for all.")
    status: str = Field(description="active, or paused after too many failed attempts.")
    failures: int = Field(description="Failed attempts in a row.")
    lastError: str | None
    lastDeliveredAt: datetime | None
    createdAt: datetime
    createdBy: str


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="Signs each delivery (Standard Webhooks: webhook-signature); answered only now."
    )


class SubscriptionList(Schema):
    subscriptions: list[SubscriptionOut]


class SubscriptionIn(Strict):
    url: str = Field(min_length=1, max_length=500, pattern=rf"^https?://[^\x00{SPACE}]+$")
    types: list[EventType] = Field(  # type: ignore[valid-type]
        [], max_length=len(TYPES), description=f"Empty for every type. {DESCRIBED}"
    )
    tenant: str | None = Field(None, pattern=LABEL_PATTERN)


class EventOut(Schema):
    id: str = Field(description="The webhook-id: the same on every attempt and redelivery.")
    type: str
    createdAt: datetime
    data: dict[str, Any]


class DeliveryOut(Schema):
    id: UUID
    subscription: UUID
    url: str
    event: EventOut
    status: str = Field(description="pending (to be tried), delivered, or failed (attempts spent).")
    attempts: int
    nextAttemptAt: datetime | None = Field(description="While pending.")
    statusCode: int | None = Field(description="What the URL answered last; null if nothing did.")
    answer: str = Field(description="The start of the last answer's body.")
    error: str | None
    durationMs: int | None
    deliveredAt: datetime | None


class DeliveryFilters(Schema):
    tenant: str = Field(None, pattern=LABEL_PATTERN, max_length=50)  # type: ignore[assignment]
    subscription: UUID = Field(None, description="Only this subscription's.")  # type: ignore[assignment]
    status: Literal["pending", "delivered", "failed"] = Field(None)  # type: ignore[arg-type]
    limit: int = Field(50, ge=1, le=200)


class DeliveryList(Schema):
    deliveries: list[DeliveryOut]


def subscription_json(s: EventSubscription) -> dict:
    return {
        "id": s.code, "url": s.url, "types": s.types, "status": s.status, "failures": s.failures,
        "lastError": s.last_error or None, "lastDeliveredAt": s.last_delivered_at,
        "createdAt": s.created, "createdBy": s.created_by,
    }  # fmt: skip


def delivery_json(d: Delivery) -> dict:
    event = d.event
    return {
        "id": d.code, "subscription": d.subscription.code, "url": d.subscription.url,
        "event": {"id": event.webhook_id, "type": event.type, "createdAt": event.created,
                  "data": event.data},
        "status": d.status, "attempts": d.attempts,
        "nextAttemptAt": d.next_attempt_at if d.status == Delivery.Status.PENDING else None,
        "statusCode": d.status_code, "answer": d.answer, "error": d.error or None,
        "durationMs": d.duration_ms, "deliveredAt": d.delivered_at,
    }  # fmt: skip


def subscription_for(request, code: UUID) -> EventSubscription:
    found = EventSubscription.objects.visible_to(request.principal).select_related("tenant")
    subscription = found.filter(code=code).first()
    if subscription is None:
        raise ApiError(404, "not_found", "No such subscription.")
    require(request, Action.MANAGE, subscription)
    return subscription


@router.get(
    "/events/subscriptions",
    response={200: SubscriptionList, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="The tenant's event subscriptions and how delivery goes",
)
def list_subscriptions(request, tenant: str = Query(None, pattern=LABEL_PATTERN, max_length=50)):
    chosen = tenant_for(request, tenant, Action.MANAGE, viewing=True)
    found = EventSubscription.objects.filter(tenant=chosen)
    return {"subscriptions": [subscription_json(s) for s in found]}


@router.post(
    "/events/subscriptions",
    response={201: SubscriptionCreated, frozenset({400, 401, 403, 404, 409}): ErrorOut},
    summary="Send the tenant's events to a URL (JSON, signed, retried)",
)
def subscribe(request, body: SubscriptionIn):
    tenant = tenant_for(request, body.tenant, Action.MANAGE)
    try:
        created = new_subscription(tenant, body.url, list(body.types), request.principal.label)
    except Refused as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    record(request, tenant, "events.subscribe", body.url, types=created.types)
    return Status(201, {**subscription_json(created), "secret": created.secret})


@router.post(
    "/events/subscriptions/{uuid:id}/ping",
    response={202: DeliveryOut, **ERRORS},
    summary="Send a `ping` event to this subscription only, to try the receiving end",
)
def ping_subscription(request, id: UUID):
    subscription = subscription_for(request, id)
    delivery = ping(subscription, request.principal.label)
    record(request, subscription.tenant, "events.ping", subscription.url)
    return Status(202, delivery_json(delivery))


@router.post(
    "/events/subscriptions/{uuid:id}/resume",
    response={200: SubscriptionOut, **ERRORS},
    summary="Deliver again to a paused subscription (what waited is sent)",
)
def resume_subscription(request, id: UUID):
    subscription = subscription_for(request, id)
    resume(subscription)
    record(request, subscription.tenant, "events.resume", subscription.url)
    subscription.refresh_from_db()
    return subscription_json(subscription)


@router.delete(
    "/events/subscriptions/{uuid:id}",
    response={204: None, **ERRORS},
    summary="Remove a subscription (and its deliveries)",
)
def unsubscribe(request, id: UUID):
    subscription = subscription_for(request, id)
    subscription.delete()
    record(request, subscription.tenant, "events.delete", subscription.url)
    return HttpResponse(status=204)


@router.get(
    "/events/deliveries",
    response={200: DeliveryList, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="The tenant's event deliveries, newest first, with the answers they got",
)
def list_deliveries(request, filters: Query[DeliveryFilters]):
    chosen = tenant_for(request, filters.tenant, Action.MANAGE, viewing=True)
    found = Delivery.objects.filter(tenant=chosen).select_related("event", "subscription")
    if filters.subscription is not None:
        found = found.filter(subscription__code=filters.subscription)
    if filters.status is not None:
        found = found.filter(status=filters.status)
    newest = found.order_by("-created", "-id")[: filters.limit]
    return {"deliveries": [delivery_json(d) for d in newest]}


@router.post(
    "/events/deliveries/{uuid:id}/redeliver",
    response={202: DeliveryOut, **ERRORS},
    summary="Send a delivery's event again, at once (the same webhook-id)",
)
def redeliver_one(request, id: UUID):
    found = Delivery.objects.visible_to(request.principal).select_related(
        "tenant", "event", "subscription"
    )
    delivery = found.filter(code=id).first()
    if delivery is None:
        raise ApiError(404, "not_found", "No such delivery.")
    require(request, Action.MANAGE, delivery)
    redeliver(delivery)
    record(request, delivery.tenant, "events.redeliver", delivery.event.type,
           event=delivery.event.webhook_id)  # fmt: skip
    delivery.refresh_from_db()
    return Status(202, delivery_json(delivery))
