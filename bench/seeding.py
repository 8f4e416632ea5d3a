"""What seeded and measured records share: the per-minute figures of seeded invocations, as
the ingest would have added them up, and request ids as the runtime makes them."""

import os
import secrets
import time

import stack  # noqa: F401 - sets up Django

from telemetry.metrics import BUCKET_SQL

# ruff: noqa: S608 - constants only

ROLLUPS_SQL = f"""
INSERT INTO deployments_metric (deployment_id, tenant_id, function, period, start, calls,
  errors, timeouts, cold_starts, duration_ms_sum, log_lines, log_bytes)
SELECT deployment_id, tenant_id, function, 'm', date_trunc('minute', started_at), count(*),
  count(*) FILTER (WHERE status <> 'ok'), 0, count(*) FILTER (WHERE cold), sum(duration_ms),
  count(*) * 5, count(*) * 5 * 30
FROM deployments_invocation GROUP BY 1, 2, 3, 5;
INSERT INTO deployments_metricbucket (deployment_id, function, period, start, bucket, count)
SELECT deployment_id, function, 'm', date_trunc('minute', started_at), {BUCKET_SQL}, count(*)
FROM deployments_invocation GROUP BY 1, 2, 4, 5;
INSERT INTO deployments_tenantmetric (tenant_id, period, start, calls, errors, timeouts,
  cold_starts, duration_ms_sum)
SELECT tenant_id, 'm', date_trunc('minute', started_at), count(*),
  count(*) FILTER (WHERE status <> 'ok'), 0, count(*) FILTER (WHERE cold), sum(duration_ms)
FROM deployments_invocation GROUP BY 1, 3;
INSERT INTO deployments_tenantmetricbucket (tenant_id, period, start, bucket, count)
SELECT tenant_id, 'm', date_trunc('minute', started_at), {BUCKET_SQL}, count(*)
FROM deployments_invocation GROUP BY 1, 3, 4
"""


def request_id() -> str:
    """An id as the runtime makes them (runtime/host.ts): the time in ms, then 80 random
    bits; BENCH_RANDOM_IDS=1 makes them all random, as they were before."""
    if os.environ.get("BENCH_RANDOM_IDS") == "1":
        return f"req_{secrets.token_hex(16)}"
    return f"req_{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def request_id_sql(number: str, started: str) -> str:
    """The same in SQL, for seeded rows: from a row number and the call's start."""
    if os.environ.get("BENCH_RANDOM_IDS") == "1":
        return f"'req_' || md5({number}::text)"
    return (
        f"'req_' || lpad(to_hex((extract(epoch FROM {started}) * 1000)::bigint), 12, '0') "
        f"|| left(md5({number}::text), 20)"
    )


def seed_rollups(cursor) -> None:
    """Every seeded invocation in its minutes (five lines of 30 bytes each)."""
    cursor.execute(ROLLUPS_SQL)
