"""The tenant's event subscriptions: add one (its signing secret shown once), choose the
event types, try it with a ping, see every delivery with its answer, redeliver one, resume a
paused subscription, remove one. Owners and admins; audited."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from telemetry.outbound import Refused
from telemetry.webhooks import body_of, new_subscription, ping, redeliver, resume
from tenancy.access import Action
from tenancy.audit import record
from tenancy.events import TYPES
from tenancy.models import Delivery, EventSubscription
from tenancy.quotas import QuotaExceeded

from .access import require, visible

SHOWN = 50  # deliveries on the page, newest first


@login_required
def events_page(request):
    tenant = request.tenant
    if tenant is None:
        return redirect("dashboard")
    require(request, Action.MANAGE, tenant, viewing=request.method == "GET")
    error, created, status = "", None, 200
    url, chosen = "", list(TYPES)
    if request.method == "POST":
        url = request.POST.get("url", "").strip()
        chosen = request.POST.getlist("types")
        try:
            created = new_subscription(tenant, url, chosen, request.principal.label)
        except Refused as exc:
            error, status = str(exc), 400
        except QuotaExceeded as exc:
            error, status = exc.message, exc.status
        else:
            record(request, tenant, "events.subscribe", url, types=created.types)
            url, chosen = "", list(TYPES)
    deliveries = list(
        Delivery.objects.filter(tenant=tenant)
        .select_related("event", "subscription")
        .order_by("-created", "-id")[:SHOWN]
    )
    for delivery in deliveries:
        delivery.body = body_of(delivery.event).decode()
    context = {
        "typed": url,
        "chosen": chosen,
        "types": TYPES,
        "subscriptions": EventSubscription.objects.filter(tenant=tenant),
        "deliveries": deliveries,
        "error": error,
        "created": created,
    }
    return render(request, "events.html", context, status=status)


@login_required
@require_POST
def subscription_act(request, code, act):
    subscription = visible(request, EventSubscription.objects.select_related("tenant"), code=code)
    if act not in ("resume", "delete", "ping"):
        raise Http404("No such action.")
    require(request, Action.MANAGE, subscription)
    if act == "delete":
        subscription.delete()
    elif act == "resume":
        resume(subscription)
    else:
        ping(subscription, request.principal.label)
    record(request, subscription.tenant, f"events.{act}", subscription.url)
    return redirect("events")


@login_required
@require_POST
def redeliver_view(request, code):
    delivery = visible(request, Delivery.objects.select_related("tenant", "event"), code=code)
    require(request, Action.MANAGE, delivery)
    redeliver(delivery)
    record(
        request,
        delivery.tenant,
        "events.redeliver",
        delivery.event.type,
        event=delivery.event.webhook_id,
    )
    return redirect("events")
