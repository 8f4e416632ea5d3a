"""Mail to members about what happened in their tenant, for the event types each asked to
hear about (Your account, Notifications; Membership.notify). In the tenant's brand, with a
link to the thing in the portal (at the tenant's own portal domain when it has one), at most
NOTICE_MAILS_PER_HOUR per member so that a storm of failures is not a storm of mail."""

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from tenancy.branding import brand_for
from tenancy.events import TYPES
from tenancy.mail import send
from tenancy.models import Membership, Tenant
from workers.models import Domain

HEADLINES = {
    "deployment.created": "{worker}: a deployment was created",
    "deployment.ready": "{worker}: a deployment is ready",
    "deployment.failed": "{worker}: a build failed",
    "deployment.promoted": "{worker}: a new deployment serves production",
    "deployment.rolled_back": "{worker}: production was rolled back",
    "canary.rolled_back": "{worker}: a canary was rolled back",
    "run.dead": "{worker}: a run became a dead letter",
    "schedule.failed": "{worker}: a scheduled run failed",
    "quota.reached": "A quota was reached",
}


def portal_url(tenant: Tenant) -> str:
    own = Domain.objects.filter(tenant=tenant, portal=True, status=Domain.Status.VERIFIED).first()
    return f"https://{own.hostname}" if own else settings.PORTAL_URL.rstrip("/")


def link(base: str, data: dict[str, Any]) -> str:
    if isinstance(data.get("run"), dict) and data["run"].get("id"):
        return base + reverse("run", args=[data["run"]["id"]])
    if isinstance(data.get("deployment"), dict) and data["deployment"].get("id"):
        return base + reverse("deployment", args=[data["deployment"]["id"]])
    return base + reverse("dashboard")


def details(data: dict[str, Any]) -> list[str]:
    """The event's facts, one line each (the error last, as written)."""
    lines = []
    thing = data.get("run") or data.get("deployment") or {}
    for label, key in (("Deployment", "shortId"), ("Function", "function"),
                       ("Status", "status"), ("Attempts", "attempts"), ("URL", "url")):  # fmt: skip
        if isinstance(thing, dict) and thing.get(key) not in (None, ""):
            lines.append(f"{label}: {thing[key]}")
    for key in ("reason", "message", "quota"):
        if data.get(key):
            lines.append(f"{key.capitalize()}: {data[key]}")
    if isinstance(thing, dict) and thing.get("error"):
        lines.append(f"Error:\n{str(thing['error'])[:1000]}")
    return lines


def compose(tenant: Tenant, event_type: str, data: dict[str, Any]) -> tuple[str, str]:
    brand = brand_for(tenant)
    base = portal_url(tenant)
    headline = HEADLINES[event_type].format(worker=data.get("worker") or "A worker")
    facts = details(data)
    text = "\n\n".join([
        f"{headline} in {tenant.name}.",
        TYPES[event_type],
        *(["\n".join(facts)] if facts else []),
        f"See it: {link(base, data)}",
        f"You get this because you asked to hear about {event_type} in {tenant.name}. Choose "
        f"what you hear about: {base}{reverse('notifications')}",
    ])  # fmt: skip
    return f"[{brand['name']}] {headline}", text


def within_limit(user_id: int) -> bool:
    key = f"notices:{user_id}:{timezone.now():%Y%m%d%H}"
    cache.add(key, 0, timeout=3600)
    return cache.incr(key) <= settings.NOTICE_MAILS_PER_HOUR


def mail(tenant_id: int, event_type: str, data: dict[str, Any], user_ids: list[int]) -> int:
    """Mails the members among `user_ids` who still belong to the tenant and still want the
    event; how many were mailed."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or event_type not in TYPES:
        return 0
    sent = 0
    members = Membership.objects.filter(tenant=tenant, user_id__in=user_ids).select_related("user")
    for member in members:
        if event_type not in member.notify or not member.user.email:
            continue
        if not within_limit(member.user_id):
            continue
        subject, text = compose(tenant, event_type, data)
        send(subject, text, [member.user.email], brand_for(tenant))
        sent += 1
    return sent
