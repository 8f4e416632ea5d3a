"""`make bench`, ingest: what Postgres spends to record one invocation with one line, and what
each part of that buys.

Seeds one tenant with 10 deployments and BENCH_INGEST_LINES console lines (default 1 million,
a fifth as many invocations) in today's partitions, with their per-minute figures, then
VACUUM ANALYZE. Then stores 20 batches of 500 invocations with one line each, as the runtime
sends them (`telemetry.ingest.store_runtime_batch`), and reads the CPU time of this Python
process, of its Postgres backend and of all of Postgres's processes (/proc/<pid>/stat: the
WAL writer and checkpointer count too) per invocation with its line.

Then the breakdown: the same batches again with one part taken away at a time (an index
dropped, a rollup left out of the statement), each inside a transaction that is rolled back,
so every variant meets the same table; the difference to the full statement measured the same
way is what that part costs.
"""

import json
import os
import re
import time
import uuid

from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from procs import cpu_seconds, named
from seeding import request_id, request_id_sql, seed_rollups
from stack import settings  # noqa: F401 - sets up Django

from deployments.models import Artifact, Deployment
from telemetry import ingest, partitions
from tenancy.models import Tenant
from workers.models import Worker

LINES = int(os.environ.get("BENCH_INGEST_LINES", "1000000"))
BATCHES = 20
PER_BATCH = 500
ROUNDS = 5  # each variant is measured this many times; the median is printed
TRIGRAMS = "deployments_logentry_message_trigrams"


def seed() -> list[Deployment]:
    partitions.ensure()
    tenant = Tenant.objects.create(slug="ingest", name="Ingest")
    worker = Worker.objects.create(tenant=tenant, name="busy")
    artifact = Artifact.store("export async function hello() { return 1; }")
    Deployment.objects.bulk_create(
        [Deployment(worker=worker, tenant=tenant, source="x", source_hash="x", status="ready",
                    functions=["hello"], artifact=artifact, files={"index.ts": "x"})
         for _ in range(10)]
    )  # fmt: skip
    deployments = list(Deployment.objects.filter(worker=worker).order_by("id"))
    first = deployments[0].pk
    with connection.cursor() as c:
        c.execute(f"DROP INDEX IF EXISTS {TRIGRAMS}")
        c.execute(f"""
            INSERT INTO deployments_invocation (request_id, deployment_id, tenant_id, function,
              trigger, status, status_code, error_message, duration_ms, attempt, started_at,
              created, cold, lines)
            SELECT {request_id_sql("g", "started")}, {first} + g % 10, {tenant.pk}, 'hello',
              'http', 'ok', 200, '', (g % 97) + 1, 1, started, now(), false, 5
            FROM generate_series(1, {LINES // 5}) g,
              LATERAL (SELECT date_trunc('day', now()) + g * interval '1 ms' AS started) s
        """)  # noqa: S608 - constants only
        c.execute("""
            INSERT INTO deployments_logentry (tenant_id, deployment_id, request_id, seq,
              function, timestamp, level, message)
            SELECT i.tenant_id, i.deployment_id, i.request_id, s, 'hello', i.started_at, 'log',
              'line ' || s || ' of call ' || i.id || ', user ' || md5(i.id::text)::uuid
            FROM deployments_invocation i, generate_series(0, 4) s
        """)
        seed_rollups(c)
        c.execute(
            f"CREATE INDEX {TRIGRAMS} ON deployments_logentry USING gin (upper(message) gin_trgm_ops)"
        )
        c.execute("VACUUM ANALYZE")
    return deployments


def bodies(deployments: list[Deployment], count: int) -> list[bytes]:
    """Batches as the runtime sends them: calls of several deployments, each with its line."""
    out = []
    for _ in range(count):
        now = timezone.now().isoformat()
        ids = [(request_id(), str(deployments[n % 3].code)) for n in range(PER_BATCH)]
        out.append(json.dumps({
            "invocations": [{"requestId": i, "deploymentId": d, "function": "hello",
                             "status": "ok", "statusCode": 200, "durationMs": 3.2,
                             "startedAt": now, "cold": False, "lines": 1} for i, d in ids],
            "logs": [{"requestId": i, "deploymentId": d, "seq": 0, "function": "hello",
                      "timestamp": now, "level": "log", "message": f"hello called, user {uuid.uuid4()}"}
                     for i, d in ids],
        }).encode())  # fmt: skip
    return out


def backend_pid() -> int:
    with connection.cursor() as c:
        c.execute("SELECT pg_backend_pid()")
        return c.fetchone()[0]


def measure(deployments, store=ingest.store_runtime_batch) -> tuple[float, float, float]:
    """CPU microseconds per invocation with one line: Python, the backend, all of Postgres."""
    batch = bodies(deployments, BATCHES + 1)
    store(batch.pop())  # warm: connection, plan cache
    pid = backend_pid()
    py0, pg0, all0 = time.process_time(), cpu_seconds(pid), cpu_seconds(*named("postgres"))
    for body in batch:
        store(body)
    flush_text_index()
    calls = BATCHES * PER_BATCH
    return (
        (time.process_time() - py0) / calls * 1e6,
        (cpu_seconds(pid) - pg0) / calls * 1e6,
        (cpu_seconds(*named("postgres")) - all0) / calls * 1e6,
    )


def flush_text_index():
    """The text index takes new lines into a pending list and sorts them in when it is full
    or at a vacuum, whichever comes first: the measurement ends with that work done, so what
    the lines cost is counted whether or not this run happened to fill the list."""
    with connection.cursor() as c:
        c.execute(
            "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE a.amname = 'gin' AND c.relkind = 'i'"
        )


def median(rows):
    return [sorted(column)[len(column) // 2] for column in zip(*rows, strict=True)]


def without_ctes(sql: str, *names: str) -> str:
    """The batch statement with some of its common table expressions left out."""
    sql = re.sub(r"\n--[^\n]*", "", sql)
    for name in names:
        sql, found = re.subn(rf"\n{name} AS \(.*?\n\),?(?=\n)", "", sql, flags=re.S)
        assert found == 1, name
    return sql.replace("),\nSELECT", ")\nSELECT")


TEXT_DDL = f"DROP INDEX {TRIGRAMS}"
LINE_KEY_DDL = "ALTER TABLE deployments_logentry DROP CONSTRAINT unique_log_line"
CALL_KEY_DDL = "ALTER TABLE deployments_invocation DROP CONSTRAINT unique_invocation"
LINE_CONFLICT = "ON CONFLICT (request_id, seq, timestamp) DO NOTHING"
CALL_CONFLICT = "ON CONFLICT (request_id, started_at) DO NOTHING"


def without_keys(sql: str) -> str:
    assert LINE_CONFLICT in sql and CALL_CONFLICT in sql
    return sql.replace(LINE_CONFLICT, "").replace(CALL_CONFLICT, "")


def parse_only() -> str:
    """The statement up to the deployments found, counting what it would store."""
    sql = without_ctes(
        ingest.BATCH_SQL, "invocations", "tenant_rows", "tenant_buckets", "lines", "metric_rows",
        "metric_buckets",
    )  # fmt: skip
    head, found = re.subn(r"\nSELECT \(SELECT count.*", "\n", sql, flags=re.S)
    assert found == 1
    counts = (
        "SELECT (SELECT count(*) FROM invocation_rows JOIN deployments USING (dep)), "
        "(SELECT count(*) FROM line_rows JOIN deployments USING (dep)), NULL"
    )
    return head + counts


def with_sql(sql: str):
    def store(body: bytes):
        original = ingest.BATCH_SQL
        ingest.BATCH_SQL = sql
        try:
            return ingest.store_runtime_batch(body)
        finally:
            ingest.BATCH_SQL = original

    return store


def index(table: str, columns: str) -> str:
    """DROP INDEX for the table's index on these columns (Django's names carry a hash)."""
    with connection.cursor() as c:
        c.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [table, f"%USING btree {columns}"],
        )
        (name,) = c.fetchone()
    return f"DROP INDEX {name}"


def rolled_back(deployments, ddl: str = "", store=ingest.store_runtime_batch):
    with transaction.atomic():
        if ddl:
            with connection.cursor() as c:
                c.execute(ddl)
        took = measure(deployments, store)
        transaction.set_rollback(True)
    vacuum()
    return took


def vacuum():
    """Rolled-back rows stay as dead ones until vacuumed: the next variant must not meet them."""
    with connection.cursor() as c:
        c.execute("VACUUM deployments_logentry, deployments_invocation")


def main():
    call_command("migrate", verbosity=0)
    started = time.monotonic()
    deployments = seed()
    seeded = time.monotonic() - started
    committed = median([measure(deployments) for _ in range(ROUNDS)])
    btrees = [
        index("deployments_logentry", "(deployment_id, id)"),
        index("deployments_logentry", "(tenant_id, id)"),
        index("deployments_invocation", "(deployment_id, started_at DESC)"),
        index("deployments_invocation", "(deployment_id, id DESC)"),
    ]
    rollups = ("tenant_rows", "tenant_buckets", "metric_rows", "metric_buckets")
    variants = [
        ("trigram index on the text (log search)", TEXT_DDL, None),
        ("line's idempotency key (request, seq, time)", LINE_KEY_DDL,
         ingest.BATCH_SQL.replace(LINE_CONFLICT, "")),
        ("call's idempotency key (request, start)", CALL_KEY_DDL,
         ingest.BATCH_SQL.replace(CALL_CONFLICT, "")),
        ("lines by deployment index (worker's log pages)", btrees[0], None),
        ("lines by tenant index (drains, retention)", btrees[1], None),
        ("calls by deployment and start index (canary checks)", btrees[2], None),
        ("calls by deployment and id index (history pages)", btrees[3], None),
        ("per-deployment rollups (charts, usage)", "",
         without_ctes(ingest.BATCH_SQL, "metric_rows", "metric_buckets")),
        ("per-tenant rollups (dashboard)", "",
         without_ctes(ingest.BATCH_SQL, "tenant_rows", "tenant_buckets")),
        ("all four rollups", "", without_ctes(ingest.BATCH_SQL, *rollups)),
        ("every secondary index and rollup (left: rows, primary keys, WAL, the parse)",
         "; ".join([TEXT_DDL, LINE_KEY_DDL, CALL_KEY_DDL, *btrees]),
         without_ctes(without_keys(ingest.BATCH_SQL), *rollups)),
        ("every insert (left: the batch parsed, its deployments found)", "", parse_only()),
    ]  # fmt: skip
    # Round by round, every variant once, the full statement first: a drift of the machine
    # or of the table over the run spreads over all of them alike.
    variants.insert(0, ("nothing", "", None))
    rounds = {label: [] for label, _, _ in variants}
    for _ in range(ROUNDS):
        for label, ddl, sql in variants:
            store = with_sql(sql) if sql else ingest.store_runtime_batch
            rounds[label].append(rolled_back(deployments, ddl, store))
    full = median(rounds.pop("nothing"))
    variants.pop(0)
    results = [(label, median(rows)) for label, rows in rounds.items()]
    print(f"\nIngest: one invocation with one line, batches of {PER_BATCH}, {BATCHES} batches; "
          f"{LINES} lines and {LINES // 5} calls stored before (seeded in {seeded:.0f} s); "
          f"median of {ROUNDS}")  # fmt: skip
    print("| | Python CPU us | Postgres backend CPU us | all Postgres CPU us |\n|---|---|---|---|")
    print("| committed batch by batch | {:.1f} | {:.1f} | {:.1f} |".format(*committed))
    print("| the same, rolled back at the end | {:.1f} | {:.1f} | {:.1f} |".format(*full))
    print("\n| without | backend CPU us | saves us |\n|---|---|---|")
    for label, (_, backend, _) in results:
        print(f"| {label} | {backend:.1f} | {full[1] - backend:.1f} |")


if __name__ == "__main__":
    main()
