"""Tenants' log drains: their console lines, also sent to their own log system as NDJSON
batches signed with HMAC-SHA256 (`x-signature: sha256=<hex>` of the raw body, keyed with the
drain's secret), in id order from a cursor; a failed batch is retried with backoff and the
drain paused after DRAIN_MAX_FAILURES in a row (its status and last error are shown).

The URL must be a public address (telemetry.outbound, which events use too)."""

import hashlib
import hmac
import json
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenancy.quotas import check_room

from .models import LogDrain, LogEntry
from .outbound import Refused, backoff, check_public, post

BATCH = 1000


DrainRefused = Refused  # why a URL cannot be a drain, for people
SENDS = "drains send lines"


def check_url(url: str) -> None:
    check_public(url, SENDS)


def new_drain(tenant, url: str, by: str) -> LogDrain:
    """DrainRefused for a URL drains may not reach, QuotaExceeded past the tenant's quota."""
    check_room(tenant, "max_drains")
    check_url(url)
    start = (
        LogEntry.objects.filter(tenant=tenant).order_by("-id").values_list("id", flat=True).first()
    )
    return LogDrain.objects.create(
        tenant=tenant, url=url, secret=secrets.token_hex(32), cursor=start or 0, created_by=by
    )


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(lines) -> bytes:
    rows = [
        {
            "id": line.id,
            "timestamp": line.timestamp.isoformat(),
            "level": line.level,
            "message": line.message,
            "requestId": line.request_id,
            "seq": line.seq,
            "function": line.function,
            "deployment": line.deployment.short_id,
            "worker": line.deployment.worker.name,
        }  # fmt: skip
        for line in lines
    ]
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode()


def deliver(drain: LogDrain) -> int:
    """One batch of lines after the drain's cursor; how many were delivered."""
    lines = list(
        LogEntry.objects.filter(tenant_id=drain.tenant_id, id__gt=drain.cursor)
        .select_related("deployment__worker")
        .order_by("id")[:BATCH]
    )
    if not lines:
        return 0
    body = payload(lines)
    now = timezone.now()
    headers = {"content-type": "application/x-ndjson", "x-signature": sign(drain.secret, body)}
    answer = post(drain.url, body, headers, SENDS)
    error = answer.error.replace("Answered", "The drain answered", 1)
    if not error:
        LogDrain.objects.filter(pk=drain.pk, cursor=drain.cursor).update(
            cursor=lines[-1].id, failures=0, last_error="", last_delivered_at=now,
            delivered_lines=drain.delivered_lines + len(lines), next_attempt_at=now,
        )  # fmt: skip
        return len(lines)
    failures = drain.failures + 1
    delay = backoff(failures, cap=300.0)
    paused = failures >= settings.DRAIN_MAX_FAILURES
    LogDrain.objects.filter(pk=drain.pk).update(
        failures=failures, last_error=error[:500], next_attempt_at=now + timedelta(seconds=delay),
        status=LogDrain.Status.PAUSED if paused else drain.status,
    )  # fmt: skip
    return 0


def deliver_due() -> int:
    now = timezone.now()
    delivered = 0
    due = LogDrain.objects.filter(Q(status=LogDrain.Status.ACTIVE), next_attempt_at__lte=now)
    for pk in list(due.values_list("pk", flat=True)[:200]):
        # One delivery per drain at a time: a tick that finds it busy moves on.
        with transaction.atomic():
            drain = LogDrain.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if drain is not None:
                delivered += deliver(drain)
    return delivered


def resume(drain: LogDrain) -> None:
    LogDrain.objects.filter(pk=drain.pk).update(
        status=LogDrain.Status.ACTIVE, failures=0, next_attempt_at=timezone.now()
    )
