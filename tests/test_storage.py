"""Invocations and log lines on Postgres: split by day, whole days dropped by retention, and
one tenant's ingest never waits for another's."""

import json
import threading
from datetime import UTC, datetime, timedelta

from django.db import connection, connections, transaction

from deployments.locks import lock_ingest
from telemetry import partitions
from telemetry.ingest import store_runtime_batch
from telemetry.models import Invocation, LogEntry
from telemetry.tasks import prune_old_logs
from workers.models import Worker

from .helpers import GREETER, create_deployment

TABLES = {Invocation: "deployments_invocation", LogEntry: "deployments_logentry"}


def batch(deployment, request_id: str, at: datetime) -> bytes:
    millis = at.timestamp() * 1000
    code = str(deployment.code)
    return json.dumps({
        "invocations": [{"requestId": request_id, "deploymentId": code, "function": "hello",
                         "status": "ok", "statusCode": 200, "durationMs": 2,
                         "startedAt": millis, "lines": 1}],
        "logs": [{"requestId": request_id, "deploymentId": code, "seq": 0, "function": "hello",
                  "timestamp": millis, "level": "log", "message": f"line of {request_id}"}],
    }).encode()  # fmt: skip


def where(model, request_id: str) -> str:
    """The partition that holds the row of `request_id`."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {TABLES[model]} WHERE request_id = %s",  # noqa: S608
            [request_id],
        )
        return cursor.fetchone()[0]


def exists(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return cursor.fetchone()[0]


def test_rows_land_in_their_day_and_stray_times_are_kept_until_their_day_is_made(deployment):
    now = datetime.now(UTC)
    last_year = now - timedelta(days=400)
    assert store_runtime_batch(batch(deployment, "req_now", now)) == (1, 1)
    assert store_runtime_batch(batch(deployment, "req_old", last_year)) == (1, 1)
    # A re-sent batch is still recognised (its times are part of the key).
    assert store_runtime_batch(batch(deployment, "req_old", last_year)) == (0, 0)

    for model, table in TABLES.items():
        assert where(model, "req_now") == partitions.day_name(table, now.date())
        assert where(model, "req_old") == f"{table}_default"

    made = partitions.ensure(today=last_year.date(), ahead=0)
    assert sorted(made) == sorted(partitions.day_name(t, last_year.date()) for t in TABLES.values())
    for model, table in TABLES.items():
        assert where(model, "req_old") == partitions.day_name(table, last_year.date())
        assert model.objects.filter(request_id="req_old").count() == 1
    line = LogEntry.objects.get(request_id="req_old")
    assert line.message == "line of req_old" and line.timestamp.date() == last_year.date()


def test_retention_drops_whole_days_and_makes_the_coming_ones(
    transactional_db, deployment, settings
):
    settings.LOG_RETENTION_DAYS = 7
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=10)).replace(hour=12)
    partitions.ensure(today=old_day.date(), ahead=0)
    store_runtime_batch(batch(deployment, "req_old", old_day))
    store_runtime_batch(batch(deployment, "req_stray", now - timedelta(days=400)))
    store_runtime_batch(batch(deployment, "req_new", now))
    with connection.cursor() as cursor:
        for table in TABLES.values():  # as if no prune had run for a while
            cursor.execute(
                f'DROP TABLE "{partitions.day_name(table, (now + timedelta(days=2)).date())}"'
            )

    prune_old_logs()

    for model, table in TABLES.items():
        assert not exists(partitions.day_name(table, old_day.date()))
        assert set(model.objects.values_list("request_id", flat=True)) == {"req_new"}
        for ahead in range(partitions.DAYS_AHEAD + 1):
            assert exists(partitions.day_name(table, (now + timedelta(days=ahead)).date()))


def test_a_tenant_that_keeps_lines_less_long_loses_them_on_time(worker, other_tenant, settings):
    settings.LOG_RETENTION_DAYS = 7
    worker.tenant.log_retention_days = 1
    worker.tenant.save()
    short = create_deployment(worker, GREETER)
    long = create_deployment(Worker.objects.create(tenant=other_tenant, name="o"), GREETER)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    store_runtime_batch(batch(short, "req_short", two_days_ago))
    store_runtime_batch(batch(long, "req_long", two_days_ago))

    prune_old_logs()

    assert set(LogEntry.objects.values_list("request_id", flat=True)) == {"req_long"}
    assert set(Invocation.objects.values_list("request_id", flat=True)) == {"req_long"}


def test_one_tenants_ingest_does_not_wait_for_anothers(transactional_db, worker, other_tenant):
    mine = create_deployment(worker, GREETER)
    theirs = create_deployment(Worker.objects.create(tenant=other_tenant, name="o"), GREETER)
    held, release = threading.Event(), threading.Event()

    def hold_my_tenant():
        try:
            with transaction.atomic():
                lock_ingest([worker.tenant_id])  # as a batch of this tenant being stored
                held.set()
                release.wait(30)
        finally:
            connections.close_all()

    def store(deployment, request_id, done):
        try:
            store_runtime_batch(batch(deployment, request_id, datetime.now(UTC)))
            done.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_my_tenant)
    holder.start()
    assert held.wait(10)
    theirs_done, mine_done = threading.Event(), threading.Event()
    threading.Thread(target=store, args=(theirs, "req_theirs", theirs_done)).start()
    mine_thread = threading.Thread(target=store, args=(mine, "req_mine", mine_done))
    mine_thread.start()
    try:
        assert theirs_done.wait(10), "another tenant's batch waited for this tenant's"
        assert not mine_done.wait(1), "a batch of the same tenant did not wait its turn"
    finally:
        release.set()
    holder.join(10)
    mine_thread.join(10)
    assert mine_done.is_set()
    assert set(LogEntry.objects.values_list("request_id", flat=True)) == {"req_theirs", "req_mine"}


def test_deleting_a_worker_or_a_tenant_takes_its_calls_and_lines_along(worker, other_tenant):
    # The database does not check these rows' deployment and tenant (deployments.models):
    # deleting cascades through Django, and nothing is left pointing nowhere.
    from deployments.deploy import delete_worker

    mine = create_deployment(worker, GREETER)
    theirs = create_deployment(Worker.objects.create(tenant=other_tenant, name="o"), GREETER)
    now = datetime.now(UTC)
    store_runtime_batch(batch(mine, "req_mine", now))
    store_runtime_batch(batch(theirs, "req_theirs", now))

    delete_worker(worker)
    for model in TABLES:
        assert set(model.objects.values_list("request_id", flat=True)) == {"req_theirs"}
    other_tenant.delete()
    for model in TABLES:
        assert not model.objects.exists()
