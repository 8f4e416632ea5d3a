"""The test databases' schema, migrated once per set of migrations.

Migrating a new database takes ~7 s of CPU, nearly all of it Django rendering the models'
state migration by migration, and every pytest worker of every run did it again. The schema
migrations make depends only on the migration files, Django, Postgres and the day (the log
tables' day partitions), so it is kept as a dump named by a hash of those, beside Deno's
download cache (the same directory bin/with-test-services keeps between clones). A run restores the dump once into a template
database (0.3 s), and each worker's database is a copy of the template made by Postgres
(Django's TEST["TEMPLATE"] setting). Django still runs `migrate` on the copy, which finds
nothing to apply: the schema the tests see is always the migrations' own.

A dump is made by migrating, so a changed migration (or Django or Postgres upgraded, or a new
day) is migrated the slow way once, then kept."""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import django
import psycopg
from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "functions-platform"
    / "test-schema"
)
KEPT = 4  # dumps of other migration sets kept (branches switched back and forth)


def migrations_key(server_version: int) -> str:
    # Today's date too: a migration makes the log tables' day partitions around the day it
    # runs (deployments 0014), so a schema migrated yesterday is not the one migrating today
    # gives.
    today = datetime.now(UTC).date()
    digest = hashlib.sha256(
        f"django {django.__version__} postgres {server_version} {today}".encode()
    )
    for config in sorted(apps.get_app_configs(), key=lambda c: c.label):
        folder = Path(config.path) / "migrations"
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{config.label}/{path.name}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def use_template(db_settings: dict) -> None:
    """Make sure this cluster has a template database holding the migrated schema, and have
    Django create this worker's test database from it."""
    conninfo = dict(
        host=db_settings["HOST"],
        port=db_settings["PORT"],
        user=db_settings["USER"],
        password=db_settings.get("PASSWORD") or None,
        dbname=db_settings["NAME"],
    )
    lock_dir = Path(os.environ.get("TEST_SERVICE_LOGS", "/tmp"))
    # One lock per run's services: the workers of a run wait for the first to build it.
    with open(lock_dir / "test-schema.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with psycopg.connect(**conninfo, autocommit=True) as maintenance:
            key = migrations_key(maintenance.info.server_version)
            template = f"test_schema_{key}"
            exists = maintenance.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [template]
            ).fetchone()
            if not exists:
                maintenance.execute(f'CREATE DATABASE "{template}"')
                fill(template, key, db_settings)
    db_settings.setdefault("TEST", {})["TEMPLATE"] = template


def fill(template: str, key: str, db_settings: dict) -> None:
    dump = CACHE / f"{key}.sql"
    env = {**os.environ, "PGPASSWORD": db_settings.get("PASSWORD") or ""}
    where = ["-h", db_settings["HOST"], "-p", str(db_settings["PORT"]), "-U", db_settings["USER"]]
    if dump.exists():
        subprocess.run(
            [pg_tool("psql"), *where, "-q", "-v", "ON_ERROR_STOP=1", "-d", template, "-f", dump],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": database_url(db_settings, template)},
        check=True,
    )
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = dump.with_suffix(f".{os.getpid()}.partial")
    with open(partial, "wb") as out:
        subprocess.run(
            [pg_tool("pg_dump"), *where, "--no-owner", "--no-privileges", template],
            env=env,
            check=True,
            stdout=out,
        )
    partial.rename(dump)  # whole or absent: a run stopped mid-dump leaves no half schema
    for old in sorted(CACHE.glob("*.sql"), key=lambda p: p.stat().st_mtime)[:-KEPT]:
        old.unlink(missing_ok=True)


def database_url(db_settings: dict, name: str) -> str:
    """The URL of database `name` on the server `db_settings` names (DATABASE_URL's form)."""
    password = f":{db_settings['PASSWORD']}" if db_settings.get("PASSWORD") else ""
    host = f"{db_settings['HOST']}:{db_settings['PORT']}"
    return f"postgres://{db_settings['USER']}{password}@{host}/{name}"


def pg_tool(name: str) -> str:
    """The tool of the server's own version (bin/with-test-services says which it started)."""
    folder = os.environ.get("TEST_PG_BIN")
    return str(Path(folder) / name) if folder else shutil.which(name) or name
