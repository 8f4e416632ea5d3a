"""The lock that orders a tenant's ingest: inserts of its lines and invocations, and the
deletes (of a worker, of the tenant) that must not meet an insert half-way."""

from django.db import connection

INGEST_LOCK = 0x10C5  # with a tenant id: the Postgres advisory lock that orders its inserts


def lock_ingest(tenant_ids) -> None:
    """Within a transaction: wait for, and hold off, other inserts of these tenants' lines
    until commit. Taken in id order, so two batches that share tenants never deadlock.
    Deleting a worker takes its tenant's, so an insert never lands between the delete's look
    at the rows that point to its deployments and the delete itself."""
    if connection.vendor == "postgresql" and tenant_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, t) FROM unnest(%s::int[]) t ORDER BY t",
                [INGEST_LOCK, sorted(tenant_ids)],
            )
