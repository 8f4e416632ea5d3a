"""Invocations and log lines on Postgres: tables partitioned by day, so retention drops whole
days instead of deleting rows one by one, and the day being written has small indexes.

Each table is split on its own time column (an invocation's start, a line's timestamp, both
as the runtime reported them, so a re-sent item falls in the same day and is still found a
duplicate). Days are named `<table>_pYYYYMMDD` (UTC). A DEFAULT partition takes what no day
holds (a clock far off, a test's row from last year), so nothing is refused; `ensure` moves
such rows into their day when it makes one. SQLite (`make run`) keeps plain tables.
"""

from datetime import UTC, date, datetime, timedelta

from django.db import OperationalError, connection, transaction

# ruff: noqa: S608 - table and partition names are the constants below and dates, never input

# table -> the column it is split on
TABLES = {"deployments_invocation": "started_at", "deployments_logentry": "timestamp"}
DAYS_AHEAD = 2  # days made before they start, so ingest never waits for one
LOCK_TIMEOUT = "2s"  # a drop waits at most this long for readers, then tries next time
LOCK_NOT_AVAILABLE = "55P03"


def enabled() -> bool:
    return connection.vendor == "postgresql"


def day_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def partitioned(cursor, table: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [table])
    return cursor.fetchone() is not None


def days_of(cursor, table: str) -> dict[date, str]:
    """The day partitions a table has (the DEFAULT one is not a day)."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(%s)",
        [table],
    )
    days = {}
    for (name,) in cursor.fetchall():
        suffix = name.removeprefix(f"{table}_p")
        if suffix != name and suffix.isdigit():
            days[datetime.strptime(suffix, "%Y%m%d").date()] = name  # noqa: DTZ007 - a date
    return days


def convert(cursor, table: str, column: str, days: list[date]) -> None:
    """Turn a plain table into one partitioned by day on `column`, rows kept; its constraints
    and indexes are made again under their names (the primary key gains `column`, as every
    unique key on a partitioned table must hold it)."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY contype DESC",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = [row[0] for row in cursor.fetchall()]
    old = f"{table}_unpartitioned"
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    cursor.execute(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING IDENTITY '
        f'INCLUDING CONSTRAINTS) PARTITION BY RANGE ("{column}")'
    )
    cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
    for day in days:
        create_day(cursor, table, day)
    # Rows first, indexes after: one build per index instead of one insert per row.
    cursor.execute(f'INSERT INTO "{table}" OVERRIDING SYSTEM VALUE SELECT * FROM "{old}"')
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce(max(id), 0) + 1, false) "
        f'FROM "{table}"',
        [table],
    )
    cursor.execute(f'DROP TABLE "{old}"')
    for name, kind, definition in constraints:
        if kind == "p":
            definition = f'PRIMARY KEY (id, "{column}")'
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    for definition in indexes:
        cursor.execute(definition)


def create_day(cursor, table: str, day: date) -> None:
    """Make the day's partition, taking over what the DEFAULT partition holds of that day
    (attaching a day the DEFAULT already has rows of would be refused)."""
    name = day_name(table, day)
    start, end = day_bounds(day)
    column = TABLES[table]
    cursor.execute(
        f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
    )
    cursor.execute(
        f'WITH moved AS (DELETE FROM "{table}_default" WHERE "{column}" >= %s '
        f'AND "{column}" < %s RETURNING *) INSERT INTO "{name}" SELECT * FROM moved',
        [start, end],
    )
    cursor.execute(
        f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)',
        [start, end],
    )


def ensure(today: date | None = None, ahead: int = DAYS_AHEAD) -> list[str]:
    """Make the partitions of today and the next `ahead` days that are missing; their names."""
    if not enabled():
        return []
    today = today or datetime.now(UTC).date()
    made = []
    for table in TABLES:
        with connection.cursor() as cursor:
            have = days_of(cursor, table)
        for n in range(ahead + 1):
            day = today + timedelta(days=n)
            if day not in have:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    create_day(cursor, table, day)
                made.append(day_name(table, day))
    return made


def drop_before(cutoff: datetime) -> list[str]:
    """Drop the day partitions that end at or before `cutoff`; their names. A drop that
    would wait on a long reader is left for the next run."""
    if not enabled():
        return []
    dropped = []
    for table in TABLES:
        with connection.cursor() as cursor:
            days = days_of(cursor, table)
        for day, name in sorted(days.items()):
            if day_bounds(day)[1] > cutoff:
                continue
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                    cursor.execute(f'DROP TABLE "{name}"')
                dropped.append(name)
            except OperationalError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                    raise
    return dropped


def prune_default(cutoff: datetime) -> int:
    """Delete what the DEFAULT partitions hold from before `cutoff` (they stay small: only
    rows no day took); the rows deleted."""
    if not enabled():
        return 0
    deleted = 0
    with connection.cursor() as cursor:
        for table, column in TABLES.items():
            cursor.execute(f'DELETE FROM "{table}_default" WHERE "{column}" < %s', [cutoff])
            deleted += cursor.rowcount
    return deleted
