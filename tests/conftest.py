"""Fixtures: users in every role, and the real processes end-to-end tests run against."""

import contextlib
import email
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from email import policy
from pathlib import Path

import httpx
import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.contrib.auth import get_user_model

from tenancy.models import Membership, Tenant

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(os.environ.get("TEST_SERVICE_LOGS", "/tmp"))


# --- people -------------------------------------------------------------------------------


def make_user(username: str):
    return get_user_model().objects.create_user(username, f"{username}@example.com", "pw-123456")


def make_operator(username: str = "op", **fields):
    """An operator as the platform requires one: staff (a superuser unless told otherwise) with
    an authenticator app set up; its secret is kept on the object for totp_code()."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    fields = {"is_staff": True, "is_superuser": True, **fields}
    user = get_user_model().objects.create_user(
        username, f"{username}@example.com", "pw-123456", **fields
    )
    user.totp_secret = generate_totp_secret()
    TOTP.activate(user, user.totp_secret)
    return user


@pytest.fixture
def admin_user(db):
    """pytest-django's admin (behind its admin_client), as the platform requires an operator."""
    return make_operator("admin")


def totp_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows for this secret now (RFC 6238: 30 s, 6 digits)."""
    import base64
    import hashlib
    import hmac
    import struct

    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def totp_code_to_type(secret: str, typing_seconds: float = 10) -> str:
    """A code for a browser to type: one whose 30-s window will not close while a loaded
    machine types and sends it (the server allows no drift), waiting for the next if need be."""
    if (left := 30 - time.time() % 30) < typing_seconds:
        time.sleep(left + 0.1)
    return totp_code(secret)


@pytest.fixture
def tenant(db):
    return Tenant.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_tenant(db):
    return Tenant.objects.create(slug="globex", name="Globex")


def member(tenant, username, role):
    user = make_user(username)
    Membership.objects.create(user=user, tenant=tenant, role=role)
    return user


@pytest.fixture
def owner(tenant):
    return member(tenant, "olivia", Membership.Role.OWNER)


@pytest.fixture
def developer(tenant):
    return member(tenant, "dev", Membership.Role.DEVELOPER)


@pytest.fixture
def viewer(tenant):
    return member(tenant, "vera", Membership.Role.VIEWER)


@pytest.fixture
def outsider(other_tenant):
    """A member of another tenant: must never see anything of `tenant`."""
    return member(other_tenant, "oscar", Membership.Role.OWNER)


@pytest.fixture
def worker(tenant):
    from workers.models import Worker

    return Worker.objects.create(tenant=tenant, name="greeter")


@pytest.fixture
def deployment(worker):
    from .helpers import GREETER, create_deployment

    return create_deployment(worker, GREETER)


def client_for(client_class, user):
    client = client_class()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def portal_session(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
    client.get("/login/")
    response = client.post(
        "/login/",
        data={
            "login": username,
            "password": "pw-123456",
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text
    return client


def form_post(client: httpx.Client, url: str, data: dict, **kwargs) -> httpx.Response:
    return client.post(
        url, data={**data, "csrfmiddlewaretoken": client.cookies["csrftoken"]}, **kwargs
    )


# --- mail -----------------------------------------------------------------------------------
# A real SMTP server (aiosmtpd) on a free port; the platform sends to it as to any other.


class Inbox:
    """What the SMTP server received, as parsed mail."""

    def __init__(self):
        self.mails: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.mails.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.mails if address in m["To"]]


@pytest.fixture
def inbox(settings):
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    # Each test counts its own sign-in attempts.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}}
    yield box
    controller.stop()


# --- the fast lane ------------------------------------------------------------------------
# `make test-fast` runs the tests not marked slow with TEST_FAST=1: one that starts Deno,
# Celery or a server anyway fails at once, saying what to mark, instead of slowing the lane.
FAST = os.environ.get("TEST_FAST") == "1"
SLOW_FIXTURES = {"live_server", "runtime", "start_worker", "asgi_server", "small_runtime"}


# A module whose every test is slow (its `pytestmark` says so) is not even imported in the
# fast lane: each worker would import it (and what it imports) only to deselect it all.
WHOLLY_SLOW = re.compile(r"^pytestmark\s*=[^\n]*\bmark\.(slow|e2e)\b", re.MULTILINE)


def pytest_ignore_collect(collection_path, config):
    if FAST and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return bool(WHOLLY_SLOW.search(collection_path.read_text())) or None
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


def not_in_the_fast_lane(node, what: str):
    pytest.fail(
        f"{node.nodeid} {what}: mark it slow (pytest.mark.slow), it is not for the fast lane"
    )


@pytest.fixture(autouse=True)
def fast_lane(request, monkeypatch):
    if not FAST:
        yield
        return
    slow = SLOW_FIXTURES & set(request.fixturenames)
    if slow:
        not_in_the_fast_lane(request.node, f"uses {', '.join(sorted(slow))}")
    import deno

    from deployments.deno import deno_bin

    deno_bin.cache_clear()
    monkeypatch.setattr(
        deno, "find_deno_bin", lambda: not_in_the_fast_lane(request.node, "runs Deno")
    )
    yield
    deno_bin.cache_clear()


# --- the database -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """pytest-django's (each xdist worker's database named after it), plus: on Postgres, the
    database is copied from a template holding the migrated schema (tests/schema.py)."""
    db_settings = settings.DATABASES["default"]
    if db_settings["ENGINE"] == "django.db.backends.postgresql":
        from tests import schema

        schema.use_template(db_settings)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and at the end: sessions still open on the test database (a live
    server's request threads, a process a test started) are ended before it is dropped,
    which Postgres refuses while anyone is connected."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# --- real processes -----------------------------------------------------------------------


def require_services():
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("End-to-end tests need the private Postgres and Redis: run `make test`.")


def e2e_database_url() -> str:
    from django.db import connection

    from tests.schema import database_url

    return database_url(connection.settings_dict, connection.settings_dict["NAME"])


def lose_redis(url: str, connections: bool = False) -> None:
    """What a Redis restarted without persistence does to this test's database (and, with
    `connections`, to the clients using it): the slow tests share one Redis server, each
    with a database of its own (tests/slots.py), so nothing here touches another's."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    if connections:
        mine = client.connection_pool.connection_kwargs.get("db", 0)
        me = client.client_id()
        for other in client.client_list():
            if int(other["db"]) == mine and int(other["id"]) != me:
                client.client_kill_filter(_id=other["id"])


def within_one_minute(needed: float = 5) -> None:
    """Quotas per minute are counted per minute of the clock: a test whose calls must fall in
    one waits for the next minute when fewer than `needed` seconds of this one are left."""
    if (left := 60 - time.time() % 60) < needed:
        time.sleep(left + 0.1)


def wait_for(predicate, timeout: float, what, interval: float = 0.05):
    """`what` names what is awaited; a callable is asked at the timeout (to say what it saw)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what() if callable(what) else what}"
    )


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT):
        self.log_path = LOG_DIR / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        # Own session, so that killing it takes its children (pool processes, deno) along.
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def kill(self, sig=signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=20)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.kill(sig)
        self.log.close()


@pytest.fixture
def start_worker(transactional_db):
    """Starts real Celery workers against the test database; stops them after the test."""
    require_services()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()  # no stale builds from earlier tests
    started: list[Process] = []

    def start(concurrency: int = 2, checker_at_start: bool = False) -> Process:
        # Each pool process would start a type checker (~1 s of a core) as it starts; most of
        # the tests' workers build once or never, so theirs start at a first build.
        env = {
            **os.environ,
            "DATABASE_URL": e2e_database_url(),
            "BUILD_CHECKER_AT_START": "1" if checker_at_start else "0",
        }
        worker = Process(
            "celery",
            [sys.executable, "-m", "celery", "-A", "workers_portal", "worker",
             "--loglevel=INFO", f"--concurrency={concurrency}", "--without-gossip",
             "--without-mingle", f"--hostname=test-{uuid.uuid4().hex[:6]}@%h"],
            env,
        )  # fmt: skip
        started.append(worker)
        wait_for(lambda: "ready." in worker.output(), 60, "the Celery worker to start")
        return worker

    yield start
    # Killed, not asked to stop: a warm shutdown takes Celery ~2.8 s, a cold one ~1.9, about
    # a minute of the slow lane's wall time over its tests. Nothing a test checks happens in
    # it, and what a killed worker left in Redis goes with the next test's flush above.
    for worker in started:
        worker.stop(signal.SIGKILL)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def start_runtime(**env: str) -> tuple[Process, str]:
    """Another runtime (`manage.py runtime`) with its own settings, on its own port."""
    port = env.pop("RUNTIME_PORT", "") or str(free_port())
    proc = Process(
        "runtime",
        [sys.executable, "manage.py", "runtime", "--skip-checks"],
        {**os.environ, "RUNTIME_PORT": port, **env},
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{url}/healthz"), 60, "the runtime to answer", interval=0.2)
    return proc, url


@pytest.fixture(scope="session")
def runtime(live_server):
    """The real data plane (`manage.py runtime`), learning deployments from the live server."""
    require_services()
    proc = Process(
        "runtime", [sys.executable, "manage.py", "runtime", "--skip-checks"], dict(os.environ)
    )

    def healthy():
        try:
            return httpx.get(f"{settings.RUNTIME_URL}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, "the runtime to answer", interval=0.2)
    yield proc
    proc.stop()


@pytest.fixture(autouse=True)
def runtime_reports_settle(request):
    """After a test that used the runtime, wait until its background reports have landed,
    so they never race the database flush that ends a transactional test."""
    yield
    if "runtime" not in request.fixturenames:
        return

    def settled():
        state = httpx.get(f"{settings.RUNTIME_URL}/healthz", timeout=2).json()
        return state["pendingReports"] == 0 and not state["flushing"]

    wait_for(settled, 15, "the runtime's reports to land", interval=0.05)


@pytest.fixture(scope="session")
def asgi_server(django_db_setup):
    """The portal under uvicorn (ASGI), as in production, for streaming endpoints."""
    require_services()
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "workers_portal.asgi:application", "--port", str(port)]
    proc = Process("uvicorn", args, {**os.environ, "DATABASE_URL": e2e_database_url()})
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{url}/login/"), 60, "uvicorn to answer", interval=0.2)
    yield url
    proc.stop()


@pytest.fixture
def fake_vercel(settings, monkeypatch):
    """The stand-in Vercel API, configured for this process and for Celery workers started
    afterwards. Ends the test red if any request or answer strayed from Vercel's spec."""
    from .fake_vercel import FakeVercel

    fake = FakeVercel().start()
    values = {
        "VERCEL_API_URL": fake.url,
        "VERCEL_API_TOKEN": fake.token,
        "VERCEL_TEAM_ID": fake.team_id,
        "VERCEL_WORKER_PROJECT_ID": fake.project_id,
        "VERCEL_ALIAS_DOMAIN": "fn.example.net",
    }
    for name, value in values.items():
        setattr(settings, name, value)
        monkeypatch.setenv(name, value)
    yield fake
    fake.stop()
    assert fake.errors == [], "requests or answers that do not match Vercel's OpenAPI description"


@pytest.fixture(scope="session")
def identity_provider():
    """A real OpenID Connect provider (tests/idp/), whose client may come back to the test
    client's host and to the live server's, for the tenant `acme`."""
    from .idp.provider import start

    callback = "/accounts/oidc/acme/login/callback/"
    hosts = ["http://testserver", f"http://{os.environ.get('LIVE_SERVER_ADDRESS', 'localhost:0')}"]
    provider = start(free_port(), [f"{host}{callback}" for host in hosts])
    yield provider
    provider.process.kill()
    provider.process.wait()
