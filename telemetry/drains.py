"""Tenants' log drains: their console lines, also sent to their own log system as NDJSON
batches signed with HMAC-SHA256 (`x-signature: sha256=<hex>` of the raw body, keyed with the
drain's secret), in id order from a cursor; a failed batch is retried with backoff and the
drain paused after DRAIN_MAX_FAILURES in a row (its status and last error are shown).

The URL must be a public address (as for workers' own fetches), so a drain cannot be
pointed at the control plane, Redis or a cloud metadata service; DRAIN_ALLOW_PRIVATE lets
an operator's test set-up deliver to itself."""

import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import socket
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenancy.quotas import check_room

from .models import LogDrain, LogEntry

BATCH = 1000


class DrainRefused(ValueError):
    """Why a URL cannot be a drain, for people."""


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DrainRefused("Use an http:// or https:// URL.")
    if settings.DRAIN_ALLOW_PRIVATE:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise DrainRefused(f"{parts.hostname} does not resolve.") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            named = (
                parts.hostname
                if parts.hostname == str(address)
                else f"{parts.hostname} is {address}, which"
            )
            raise DrainRefused(
                f"{named} is a loopback, private or reserved address; drains send lines only "
                "to public addresses (http:// or https://), where your log service listens."
            )


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
    try:
        check_url(drain.url)
        response = httpx.post(
            drain.url, content=body, timeout=10, follow_redirects=False,
            headers={"content-type": "application/x-ndjson", "x-signature": sign(drain.secret, body)},
        )  # fmt: skip
        error = "" if response.is_success else f"The drain answered {response.status_code}."
    except (httpx.HTTPError, DrainRefused) as exc:
        error = f"Could not deliver: {exc}"
    if not error:
        LogDrain.objects.filter(pk=drain.pk, cursor=drain.cursor).update(
            cursor=lines[-1].id, failures=0, last_error="", last_delivered_at=now,
            delivered_lines=drain.delivered_lines + len(lines), next_attempt_at=now,
        )  # fmt: skip
        return len(lines)
    failures = drain.failures + 1
    delay = min(300.0, 2.0**failures) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter
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
