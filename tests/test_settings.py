"""Settings: refusing an insecure production start, and SQLite set up for four processes."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# Each test starts the platform's own processes (web, runtime, worker, manage.py) with other
# settings: 7 s of Python starts, kept out of the one-minute edit loop.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "workers_portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def run(args, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    return subprocess.run(
        args, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_production_start_without_secret_key_refuses_and_names_the_variable(tmp_path):
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    starts = {
        "web": [sys.executable, "-c", "import workers_portal.asgi"],
        "runtime": [sys.executable, "manage.py", "runtime"],
        # No broker at port 1: the refusal must come before any connection attempt.
        "worker": [sys.executable, "-m", "celery", "-A", "workers_portal", "worker"],
    }
    env = {"DEBUG": "0", "DATABASE_URL": db, "REDIS_URL": "redis://127.0.0.1:1/0"}
    check = [sys.executable, "manage.py", "check", "--deploy"]
    # Five Python starts of Django: side by side (each mostly waits on its imports).
    with ThreadPoolExecutor(max_workers=len(starts) + 1) as pool:
        results = {name: pool.submit(run, args, **env) for name, args in starts.items()}
        deploy_check = pool.submit(run, check, DEBUG="0", DATABASE_URL=db)
        for name, result in results.items():
            assert result.result().returncode != 0, name
            assert "SECRET_KEY" in result.result().stderr, name
            assert "environment variable" in result.result().stderr, name
        assert "workers_portal.E001" in deploy_check.result().stderr


def test_commands_that_serve_nothing_need_no_key(tmp_path):
    result = run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        DEBUG="0", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout


def test_debug_start_with_the_development_key_works():
    result = run_python("import django; django.setup(); print('ok')", DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_sqlite_default_uses_wal_busy_timeout_and_immediate_transactions(tmp_path):
    db = tmp_path / "portal.sqlite3"
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "c = connection.cursor()\n"
        "print(c.execute('PRAGMA journal_mode').fetchone()[0])\n"
        "print(c.execute('PRAGMA busy_timeout').fetchone()[0])\n"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])\n"
    )
    result = run_python(code, DEBUG="1", DATABASE_URL=f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "20000", "IMMEDIATE"]
