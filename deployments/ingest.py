"""Storing log lines and invocations that arrive from runtime hosts and log drains.

Stores are idempotent on (request id, sequence), so a re-sent batch adds nothing. Lines are
committed in id order (one writer at a time), so a reader's cursor "last id seen" never
skips a line that commits late; then every live tail of the worker is woken through Redis.
"""

import logging
from datetime import UTC, datetime
from functools import cache

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from .models import Deployment, Invocation, LogEntry

log = logging.getLogger(__name__)
INGEST_LOCK = 0x10C5  # the Postgres advisory lock that orders log inserts


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def channel(worker_id: int) -> str:
    return f"logs:worker:{worker_id}"


def notify(worker_ids: set[int]) -> None:
    """Wake the live tails; they read the lines from the database, so a lost wake-up only
    delays a line until the tail's next periodic look."""
    try:
        pipe = redis_client().pipeline()
        for worker_id in worker_ids:
            pipe.publish(channel(worker_id), "1")
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("Could not notify live tails: %s", exc)


def parse_time(value) -> datetime:
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000, UTC)
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


def lock_ingest() -> None:
    """Within a transaction: wait for, and hold off, other log inserts until commit. Deleting
    a worker takes it too, so an insert never lands between the delete's look at the rows
    that point to its deployments and the delete itself."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [INGEST_LOCK])


def store(invocations: list[Invocation], lines: list[LogEntry], worker_ids: set[int]) -> None:
    with transaction.atomic():
        if lines or invocations:
            lock_ingest()
        Invocation.objects.bulk_create(invocations, ignore_conflicts=True)
        LogEntry.objects.bulk_create(lines, ignore_conflicts=True)
        if lines:
            transaction.on_commit(lambda: notify(worker_ids))


def deployments_by(field: str, keys) -> dict[str, Deployment]:
    keys = [k for k in keys if k]
    found = Deployment.objects.filter(**{f"{field}__in": keys}).only(
        "id", "code", "tenant_id", "worker_id", "deployment_id"
    )
    return {str(getattr(d, field)): d for d in found}


def store_runtime_batch(batch: dict) -> tuple[int, int]:
    try:
        return _store_runtime_batch(batch)
    except IntegrityError:
        # A deployment was deleted after we looked it up: look again; its lines are dropped.
        return _store_runtime_batch(batch)


def _store_runtime_batch(batch: dict) -> tuple[int, int]:
    invocations = list(batch.get("invocations", []))
    logs = list(batch.get("logs", []))
    deployments = deployments_by("code", {i.get("deploymentId") for i in invocations + logs})
    new_invocations, new_lines, worker_ids = [], [], set()
    for item in invocations:
        deployment = deployments.get(item.get("deploymentId"))
        if deployment is None:
            continue  # its deployment was deleted meanwhile
        new_invocations.append(
            Invocation(
                request_id=str(item["requestId"])[:64],
                deployment_id=deployment.id,
                tenant_id=deployment.tenant_id,
                function=str(item.get("function", ""))[:200],
                trigger=item.get("trigger") or Invocation.Trigger.HTTP,
                status=item.get("status") or Invocation.Status.ERROR,
                status_code=int(item.get("statusCode") or 0),
                error_message=str(item.get("errorMessage") or ""),
                duration_ms=float(item.get("durationMs") or 0),
                started_at=parse_time(item.get("startedAt")),
            )
        )
    for item in logs:
        deployment = deployments.get(item.get("deploymentId"))
        if deployment is None:
            continue
        worker_ids.add(deployment.worker_id)
        new_lines.append(
            LogEntry(
                request_id=str(item["requestId"])[:64],
                seq=int(item["seq"]),
                function=str(item.get("function") or "")[:200],
                deployment_id=deployment.id,
                tenant_id=deployment.tenant_id,
                timestamp=parse_time(item.get("timestamp")),
                level=item.get("level") if item.get("level") in LogEntry.Level.values else "log",
                message=str(item.get("message", "")),
            )
        )
    store(new_invocations, new_lines, worker_ids)
    return len(new_invocations), len(new_lines)
