"""Storing log lines and invocations that arrive from runtime hosts and log drains.

Stores are idempotent on (request id, sequence, time), so a re-sent batch adds nothing. A
tenant's lines are committed in id order (one writer per tenant at a time; tenants do not
wait for each other), so a reader's cursor "last id seen" over a tenant's or a worker's lines
never skips a line that commits late; then every live tail of the worker is woken through
Redis.
"""

import json
import logging
import re
import uuid
from datetime import UTC, datetime

import redis
from django.db import DataError, IntegrityError, connection, transaction

from deployments.announce import redis_client
from deployments.contract import LOG_LEVELS
from deployments.locks import lock_ingest
from deployments.models import Deployment

from .metrics import BUCKET_SQL, add_up
from .models import (
    Invocation,
    LogEntry,
    Metric,
    MetricBucket,
    TenantMetric,
    TenantMetricBucket,
)

log = logging.getLogger(__name__)
# Both paths (one statement on Postgres, rows on SQLite) take their rules from the contract:
# a line of a level it does not know is stored as a plain log line.
DEFAULT_LEVEL = "log"


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


def store(invocations: list[Invocation], lines: list[LogEntry], worker_ids: set[int]) -> None:
    with transaction.atomic():
        lock_ingest({i.tenant_id for i in invocations} | {line.tenant_id for line in lines})
        # What is stored already is neither stored nor counted again.
        known = set(
            Invocation.objects.filter(
                request_id__in=[i.request_id for i in invocations]
            ).values_list("request_id", flat=True)
        )
        known_lines = set(
            LogEntry.objects.filter(request_id__in={line.request_id for line in lines}).values_list(
                "request_id", "seq"
            )
        )
        Invocation.objects.bulk_create(invocations, ignore_conflicts=True)
        LogEntry.objects.bulk_create(lines, ignore_conflicts=True)
        add_up(
            [i for i in invocations if i.request_id not in known],
            [line for line in lines if (line.request_id, line.seq) not in known_lines],
        )
        if lines:
            transaction.on_commit(lambda: notify(worker_ids))


def is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def deployments_by(field: str, keys) -> dict[str, Deployment]:
    keys = [k for k in keys if k and (field != "code" or is_uuid(k))]
    found = Deployment.objects.filter(**{f"{field}__in": keys}).only(
        "id", "code", "tenant_id", "worker_id", "backend_id"
    )
    return {str(getattr(d, field)): d for d in found}


def store_runtime_batch(body: bytes, only: Deployment | None = None) -> tuple[int, int]:
    """Stores a batch as sent (JSON bytes); with `only`, every item goes on that deployment,
    whatever the body says. Raises ValueError for a batch that is not one."""
    if connection.vendor == "postgresql":
        return store_in_postgres(body, only)
    batch = json.loads(body)
    if only is not None:
        for item in [*batch.get("invocations", []), *batch.get("logs", [])]:
            item["deploymentId"] = str(only.code)
    try:
        return _store_runtime_batch(batch)
    except IntegrityError:
        # A deployment was deleted after we looked it up: look again; its lines are dropped.
        return _store_runtime_batch(batch)


# Postgres reads the batch itself: the runtime hosts send thousands of invocations and lines
# a second, and building a Python object per row cost more CPU than everything else the
# control plane does for them. Same rules as the row-by-row path below (used on SQLite):
# items of deleted or unknown deployments are skipped, re-sent ones add nothing, lines get
# ids in the order they were sent.
UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIME_SQL = """CASE WHEN {t} IS NULL OR {t} = '' THEN now()
    WHEN {t} ~ '^[0-9]+(\\.[0-9]+)?$' THEN to_timestamp({t}::float8 / 1000)
    ELSE {t}::timestamptz END"""
# Only constants are formatted in; every value goes as a parameter.
BATCH_SQL = f"""
WITH batch AS (SELECT %(body)s::jsonb AS j),
invocation_rows AS MATERIALIZED (
  SELECT x.*, lower(coalesce(%(only)s, x."deploymentId")) AS dep
  FROM batch, ROWS FROM (jsonb_to_recordset(coalesce(batch.j -> 'invocations', '[]'))
    AS ("requestId" text, "deploymentId" text, function text, trigger text, status text,
        "statusCode" int, "errorMessage" text, "durationMs" float8, "startedAt" text,
        cold boolean, lines int))
    WITH ORDINALITY AS x
),
line_rows AS MATERIALIZED (
  SELECT x.*, lower(coalesce(%(only)s, x."deploymentId")) AS dep
  FROM batch, ROWS FROM (jsonb_to_recordset(coalesce(batch.j -> 'logs', '[]'))
    AS ("requestId" text, "deploymentId" text, seq bigint, function text, timestamp text,
        level text, message text))
    WITH ORDINALITY AS x
),
-- Found through the index on code (a join on a computed key read all deployments).
deployments AS MATERIALIZED (
  SELECT d.code::text AS dep, d.id, d.tenant_id, d.worker_id
  FROM {Deployment._meta.db_table} d
  WHERE d.code = ANY(ARRAY(
    SELECT k.dep::uuid
    FROM (SELECT dep FROM invocation_rows UNION SELECT dep FROM line_rows OFFSET 0) k
    WHERE k.dep ~ '{UUID_PATTERN}'))  -- OFFSET 0: the pattern is tried once per deployment
),
invocations AS (
  INSERT INTO {Invocation._meta.db_table} (request_id, deployment_id, tenant_id, function,
    trigger, status, status_code, error_message, duration_ms, attempt, started_at, created,
    cold, lines)
  SELECT left(x."requestId", 64), d.id, d.tenant_id, left(coalesce(x.function, ''), 200),
    left(coalesce(nullif(x.trigger, ''), 'http'), 16),
    left(coalesce(nullif(x.status, ''), 'error'), 16), coalesce(x."statusCode", 0),
    coalesce(x."errorMessage", ''), coalesce(x."durationMs", 0), 1,
    {TIME_SQL.format(t='x."startedAt"')}, now(), coalesce(x.cold, false),
    greatest(coalesce(x.lines, 0), 0)
  FROM invocation_rows x JOIN deployments d USING (dep)
  ORDER BY x.ordinality
  ON CONFLICT (request_id, started_at) DO NOTHING
  RETURNING deployment_id, tenant_id, function, status, status_code, duration_ms, started_at,
    cold
),
-- The same, for the tenant's dashboard: one row a minute for all its deployments.
tenant_rows AS (
  INSERT INTO {TenantMetric._meta.db_table} AS t (tenant_id, period, start, calls, errors,
    timeouts, cold_starts, duration_ms_sum)
  SELECT tenant_id, 'm', date_trunc('minute', started_at), count(*),
    count(*) FILTER (WHERE status <> 'ok' OR status_code >= 500),
    count(*) FILTER (WHERE status = 'timeout'), count(*) FILTER (WHERE cold), sum(duration_ms)
  FROM invocations GROUP BY 1, 3
  ON CONFLICT (tenant_id, period, start) DO UPDATE SET
    calls = t.calls + EXCLUDED.calls, errors = t.errors + EXCLUDED.errors,
    timeouts = t.timeouts + EXCLUDED.timeouts, cold_starts = t.cold_starts + EXCLUDED.cold_starts,
    duration_ms_sum = t.duration_ms_sum + EXCLUDED.duration_ms_sum
  RETURNING 1
),
tenant_buckets AS (
  INSERT INTO {TenantMetricBucket._meta.db_table} AS b (tenant_id, period, start, bucket, count)
  SELECT tenant_id, 'm', date_trunc('minute', started_at), {BUCKET_SQL}, count(*)
  FROM invocations GROUP BY 1, 3, 4
  ON CONFLICT (tenant_id, period, start, bucket) DO UPDATE SET count = b.count + EXCLUDED.count
  RETURNING 1
),
lines AS (
  INSERT INTO {LogEntry._meta.db_table} (tenant_id, deployment_id, request_id, seq, function,
    timestamp, level, message)
  SELECT d.tenant_id, d.id, left(x."requestId", 64), x.seq, left(coalesce(x.function, ''), 200),
    {TIME_SQL.format(t="x.timestamp")},
    CASE WHEN x.level = ANY(%(levels)s) THEN x.level ELSE %(default_level)s END,
    coalesce(x.message, '')
  FROM line_rows x JOIN deployments d USING (dep)
  ORDER BY x.ordinality
  ON CONFLICT (request_id, seq, timestamp) DO NOTHING
  RETURNING deployment_id, tenant_id, function, timestamp, message
),
-- The per-minute figures (telemetry.metrics), added up from the invocations and lines just
-- stored (a re-sent one is not in RETURNING, so it is never counted twice).
metric_rows AS (
  INSERT INTO {Metric._meta.db_table} AS m (deployment_id, tenant_id, function, period, start,
    calls, errors, timeouts, cold_starts, duration_ms_sum, log_lines, log_bytes)
  SELECT deployment_id, tenant_id, function, 'm', minute, sum(calls), sum(errors),
    sum(timeouts), sum(cold_starts), sum(duration_ms), sum(log_lines), sum(log_bytes)
  FROM (
    SELECT deployment_id, tenant_id, function, date_trunc('minute', started_at) AS minute,
      1 AS calls, (status <> 'ok' OR status_code >= 500)::int AS errors,
      (status = 'timeout')::int AS timeouts, cold::int AS cold_starts, duration_ms,
      0 AS log_lines, 0 AS log_bytes
    FROM invocations
    UNION ALL
    SELECT deployment_id, tenant_id, function, date_trunc('minute', timestamp), 0, 0, 0, 0, 0,
      1, octet_length(message)
    FROM lines
  ) x
  GROUP BY 1, 2, 3, 5
  ON CONFLICT (deployment_id, function, period, start) DO UPDATE SET
    calls = m.calls + EXCLUDED.calls, errors = m.errors + EXCLUDED.errors,
    timeouts = m.timeouts + EXCLUDED.timeouts, cold_starts = m.cold_starts + EXCLUDED.cold_starts,
    duration_ms_sum = m.duration_ms_sum + EXCLUDED.duration_ms_sum,
    log_lines = m.log_lines + EXCLUDED.log_lines, log_bytes = m.log_bytes + EXCLUDED.log_bytes
  RETURNING 1
),
metric_buckets AS (
  INSERT INTO {MetricBucket._meta.db_table} AS b (deployment_id, function, period, start,
    bucket, count)
  SELECT deployment_id, function, 'm', date_trunc('minute', started_at), {BUCKET_SQL}, count(*)
  FROM invocations GROUP BY 1, 2, 4, 5
  ON CONFLICT (deployment_id, function, period, start, bucket) DO UPDATE SET
    count = b.count + EXCLUDED.count
  RETURNING 1
)
SELECT (SELECT count(*) FROM invocations), (SELECT count(*) FROM lines),
  (SELECT array_agg(DISTINCT worker_id) FROM deployments
   WHERE id IN (SELECT deployment_id FROM lines))
"""  # noqa: S608
# Postgres text cannot hold NUL: an escaped one (not an escaped backslash before "u0000")
# becomes U+FFFD, as it would on the way to any terminal.
NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


DEPLOYMENT_ID = re.compile(rb'"deploymentId"\s*:\s*"([0-9a-fA-F-]{36})"')


# Deployment code -> tenant id: a deployment never changes tenant, so what was read once
# holds; bounded, as every deployment that ever sent a line would otherwise stay.
TENANT_OF_CODE: dict[str, int] = {}
TENANT_CACHE_SIZE = 100_000


def tenants_of(body: bytes, only: Deployment | None) -> set[int]:
    """The tenants a batch writes to, found without parsing it (the database does that)."""
    if only is not None:
        return {only.tenant_id}
    codes = {m.decode().lower() for m in set(DEPLOYMENT_ID.findall(body))}
    missing = [c for c in codes if c not in TENANT_OF_CODE and is_uuid(c)]
    if missing:
        if len(TENANT_OF_CODE) > TENANT_CACHE_SIZE:
            TENANT_OF_CODE.clear()
        found = Deployment.objects.filter(code__in=missing).values_list("code", "tenant_id")
        TENANT_OF_CODE.update((str(code), tenant_id) for code, tenant_id in found)
    return {TENANT_OF_CODE[c] for c in codes if c in TENANT_OF_CODE}


def store_in_postgres(body: bytes, only: Deployment | None) -> tuple[int, int]:
    if b"\\u0000" in body:
        body = NUL_ESCAPE.sub(rb"\1\\ufffd", body)
    params = {
        "body": body.decode(),
        "only": str(only.code) if only else None,
        "levels": LOG_LEVELS,
        "default_level": DEFAULT_LEVEL,
    }
    try:
        with transaction.atomic():
            lock_ingest(tenants_of(body, only))
            with connection.cursor() as cursor:
                cursor.execute(BATCH_SQL, params)
                invocations, lines, worker_ids = cursor.fetchone()
            if worker_ids:
                transaction.on_commit(lambda: notify(set(worker_ids)))
    except (DataError, IntegrityError) as exc:
        raise ValueError(str(exc).splitlines()[0]) from exc
    return invocations, lines


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
                cold=item.get("cold") is True,
                lines=max(0, int(item.get("lines") or 0)),
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
                level=item.get("level") if item.get("level") in LOG_LEVELS else DEFAULT_LEVEL,
                message=str(item.get("message", "")),
            )
        )
    store(new_invocations, new_lines, worker_ids)
    return len(new_invocations), len(new_lines)
