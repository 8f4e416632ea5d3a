"""Settings for every process (web, worker, beat, runtime), read from the environment."""

import base64
import hashlib
import hmac
import os
import warnings
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
# A process that serves (web, worker, beat, runtime) refuses to start with the development
# key unless DEBUG is on: see workers_portal.startup. Management commands such as
# makemigrations need no real key, so the settings themselves still load.
INSECURE_SECRET_KEY = not DEBUG and SECRET_KEY == DEV_SECRET_KEY

# The platform's own names (ALLOWED_HOSTS in the environment). Tenants' verified portal
# domains are served too, so the Host header is checked by workers.hosts.HostMiddleware
# (first in MIDDLEWARE), which Django's own check would refuse: hence "*" here, as Django's
# documentation describes for a project that validates the header itself.
PLATFORM_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
ALLOWED_HOSTS = ["*"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # (the sessions page says "3 minutes ago")
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "workers_portal",
    "tenancy",
    "accounts",
    "workers",
    "kv",
    "deployments",
    "runs",
    "telemetry",
    "releases",
    "sso",
    "portal",
]

MIDDLEWARE = [
    "workers.hosts.HostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tenancy.middleware.UploadSizeMiddleware",
    "api.errors.JsonErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workers.middleware.PrincipalMiddleware",
    "accounts.middleware.SecondFactorRequired",
    "sso.middleware.SingleSignOnRequired",
    "portal.time_zone.TimeZoneMiddleware",
]

ROOT_URLCONF = "workers_portal.urls"
WSGI_APPLICATION = "workers_portal.wsgi.application"
ASGI_APPLICATION = "workers_portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workers_portal.context_processors.tenancy",
            ],
        },
    },
]

# SQLite by default so a first run needs nothing. WAL, a busy timeout and IMMEDIATE
# transactions let web, worker, beat and the runtime ingest share one file without
# "database is locked".
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
    DATABASE_POOL_MAX = env.int("DATABASE_POOL_MAX", default=10)
    if CONN_MAX_AGE and DATABASE_POOL_MAX:
        # Under ASGI every request runs in a thread of its own, so a connection kept per thread
        # was a new connection per request (15-20 ms before the first query); a pool lends
        # open connections to whichever thread asks. (The test server turns both off.)
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": DATABASE_POOL_MAX, "max_idle": CONN_MAX_AGE, "timeout": 10,
        }  # fmt: skip
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = CONN_MAX_AGE
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # Pages run short queries on big tables: compiling one with JIT took longer (0.2 s) than
    # running it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The test suite makes hundreds of users: there (bin/with-test-services sets it, for every
# process it starts) a cheap hash; never set it anywhere else.
if env.bool("TEST_CHEAP_PASSWORD_HASH", default=False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- Accounts (django-allauth; accounts/) ----------------------------------------------
# Sign in by username or address; no sign-up of one's own (accounts come with invitations);
# password reset by a single-use link that expires (PASSWORD_RESET_TIMEOUT, 1 hour); a
# password change keeps this session and ends every other. Failed sign-ins are throttled per
# address and per account (allauth's rate limits, kept in the shared cache below).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
USERSESSIONS_ADAPTER = "accounts.adapter.SessionsAdapter"
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*"]
# An address is proven by a link mailed to it: an account changes its address by confirming
# the new one (the old stays until then, and is told of the change); an invitation accepted
# proves the invited address. Signing in does not wait for it.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False  # (a link opened by a mail scanner confirms nothing)
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_EMAIL_NOTIFICATIONS = True  # a mail when the password was changed or reset
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None  # the user chooses ("stay logged in")
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
ACCOUNT_RATE_LIMITS = {
    "login_failed": env.str("LOGIN_FAILURE_LIMITS", default="10/m/ip,5/5m/key"),
    "login": env.str("LOGIN_LIMITS", default="60/m/ip"),
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
}
# Second factors: an authenticator app (TOTP) with recovery codes, and passkeys (WebAuthn),
# which also sign in on their own. Operators need one (but in `make run`'s demo, which sets
# OPERATORS_NEED_SECOND_FACTOR=0); a tenant's owner can require one of its members.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
# allauth holds back factors from an account whose address is unproven (against a stranger who
# signs up with someone's address and locks them out). Nobody signs up here, and a tenant may
# require a factor of an account an operator made: it must be able to add one.
MFA_ALLOW_UNVERIFIED_EMAIL = True
MFA_TOTP_ISSUER = env.str("PLATFORM_NAME", default="Functions")
# Passkeys need https, except on a developer's own machine (localhost, 127.0.0.1).
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env.bool("MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", default=DEBUG)
OPERATORS_NEED_SECOND_FACTOR = env.bool("OPERATORS_NEED_SECOND_FACTOR", default=True)
USERSESSIONS_TRACK_ACTIVITY = True  # a session's last address and time seen, for its user
# Single sign-on: each tenant's own OpenID Connect provider (sso/), known to allauth by the
# tenant's slug. A provider signs in addresses at its tenant's verified domains: the person
# gets an account at once, or their account with that address is linked, and a membership.
SOCIALACCOUNT_ADAPTER = "sso.adapter.Adapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # (the adapter links by address, on its own rules)
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"  # the provider vouched for the address
SOCIALACCOUNT_STORE_TOKENS = False  # the platform signs people in, it calls nothing for them
SOCIALACCOUNT_LOGIN_ON_GET = False
# Providers are fetched only at public https addresses; a test set-up (or an air-gapped
# site with its provider inside) allows private addresses and plain http.
SSO_ALLOW_PRIVATE_ISSUERS = env.bool("SSO_ALLOW_PRIVATE_ISSUERS", default=False)
SSO_ALLOW_HTTP = env.bool("SSO_ALLOW_HTTP", default=False)
SSO_TIMEOUT_SECONDS = env.float("SSO_TIMEOUT_SECONDS", default=5.0)


LANGUAGE_CODE = "en-us"
FORMAT_MODULE_PATH = ["workers_portal.formats"]  # times as the portal writes them, the admin too
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve from the app folders too, so no collectstatic for dev

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
    if env.bool("BEHIND_TLS_PROXY", default=False):  # trust the proxy's X-Forwarded-Proto
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "quiet_polls": {"()": "workers_portal.log_filters.QuietPolls"},
        "no_traceback_below_500": {"()": "workers_portal.log_filters.NoTracebackBelow500"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # Django's own console handler (DEBUG) and the root one printed each line twice.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "filters": ["quiet_polls"], "propagate": False},
        "django.request": {"filters": ["no_traceback_below_500"]},
    },
}
# WhiteNoise serves static files from a synchronous iterator, which Django under ASGI reads
# in a thread and warns about once per process; for files on disk that is what we want.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators", category=Warning
)

# --- Celery ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

# The shared cache (rate limits of sign-ins, across every web process): Redis. Keys carry the
# database's name, so test runs side by side never count each other's attempts.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "workers_portal.cache.make_key",
    }
}
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A build survives a killed worker: the message is acknowledged only after the task ran,
# and a lost worker process puts it back. The beat sweep covers a whole-host crash.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 900)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-deployments": {
        "task": "deployments.tasks.sweep_stuck_deployments",
        "schedule": env.float("SWEEP_INTERVAL_SECONDS", default=30.0),
    },
    "check-canaries": {
        "task": "releases.tasks.check_canaries",
        "schedule": env.float("CANARY_CHECK_SECONDS", default=10.0),
    },
    "sweep-runs": {
        "task": "runs.tasks.sweep_runs",
        "schedule": env.float("RUN_SWEEP_SECONDS", default=10.0),
    },
    # Cron firings are looked for every second: a run starts within about a second of its
    # minute (docs/benchmarks.md).
    "fire-schedules": {
        "task": "runs.tasks.fire_schedules",
        "schedule": env.float("SCHEDULE_TICK_SECONDS", default=1.0),
    },
    "roll-up-metrics": {
        "task": "telemetry.tasks.roll_up_metrics",
        "schedule": env.float("METRICS_ROLLUP_SECONDS", default=300.0),
    },
    "meter-usage": {
        "task": "telemetry.tasks.meter_usage",
        "schedule": env.float("USAGE_METER_SECONDS", default=300.0),
    },
    "deliver-log-drains": {
        "task": "telemetry.tasks.deliver_log_drains",
        "schedule": env.float("DRAIN_TICK_SECONDS", default=2.0),
    },
    "deliver-events": {
        "task": "telemetry.tasks.deliver_events",
        "schedule": env.float("EVENT_TICK_SECONDS", default=2.0),
    },
    "sweep-expired-keys": {
        "task": "kv.tasks.sweep_expired",
        "schedule": env.float("KV_SWEEP_SECONDS", default=300.0),
    },
    "check-domains": {
        "task": "releases.domains.check_domains",
        "schedule": env.float("DOMAINS_TICK_SECONDS", default=30.0),
    },
    "prune-old-logs": {
        "task": "telemetry.tasks.prune_old_logs",
        "schedule": env.float("PRUNE_INTERVAL_SECONDS", default=3600.0),
    },
}

# --- Builds -----------------------------------------------------------------------------
DENO_DIR = Path(env.str("DENO_DIR", default=str(VAR_DIR / "deno")))
BUILD_TIMEOUT_SECONDS = env.int("BUILD_TIMEOUT_SECONDS", default=120)
# Each build process's builds are made here (a directory per process), where its warm type
# checker (deployments/checker.py) sees them. Off: every build runs `deno check` afresh.
BUILDS_DIR = Path(env.str("BUILDS_DIR", default=str(VAR_DIR / "builds")))
BUILD_WARM_CHECKER = env.bool("BUILD_WARM_CHECKER", default=True)
# Each Celery process starts its warm checker when it starts (~280 MB each, held from then on
# as after a first build), instead of at its first build.
BUILD_CHECKER_AT_START = env.bool("BUILD_CHECKER_AT_START", default=True)
# A deployment still building (or queued) this long after its last step is re-enqueued
# by the sweep; after BUILD_MAX_ATTEMPTS it ends in error instead of waiting forever.
BUILD_DEADLINE_SECONDS = env.int("BUILD_DEADLINE_SECONDS", default=300)
BUILD_MAX_ATTEMPTS = env.int("BUILD_MAX_ATTEMPTS", default=3)
MAX_SOURCE_BYTES = env.int("MAX_SOURCE_BYTES", default=1024 * 1024)  # all files together
MAX_PROGRAM_FILES = env.int("MAX_PROGRAM_FILES", default=200)
# A form upload at most (an archive compresses text, so it is smaller than what it holds).
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=MAX_SOURCE_BYTES * 4 + 64 * 1024)
# The bundle with its packages (Cloudflare allows 10 MB compressed on paid plans).
MAX_ARTIFACT_BYTES = env.int("MAX_ARTIFACT_BYTES", default=10 * 1024 * 1024)
# CPU time a module's top level may take to load (Cloudflare allows 400 ms at startup).
STARTUP_CPU_MS = env.int("STARTUP_CPU_MS", default=400)
# Memory of one build step (resolving, type-checking, bundling: the compiler runs in it).
BUILD_STEP_MEMORY_MB = env.int("BUILD_STEP_MEMORY_MB", default=2048)
# Cores one build step may use at once (a CFS quota). The type checker's compiler runs on
# several threads: held to one core it took 1.35 s where two give 0.9 s (a one-file module).
BUILD_STEP_CPUS = env.float("BUILD_STEP_CPUS", default=2.0)
# Hosts a build may import https: and jsr: modules from (npm packages come from the npm
# registry, NPM_CONFIG_REGISTRY to use a mirror).
BUILD_IMPORT_HOSTS = env.list("BUILD_IMPORT_HOSTS", default=["jsr.io", "deno.land", "esm.sh"])
# A build of the same files, lockfile, limits and secrets by the same Deno and build code is
# reused (deployments/build_cache.py): kept in BUILD_CACHE_DIR (one per build machine; empty
# it, or set BUILD_CACHE=0, to build everything in full), entries unused for BUILD_CACHE_DAYS
# removed, at most BUILD_CACHE_MB kept.
BUILD_CACHE = env.bool("BUILD_CACHE", default=True)
BUILD_CACHE_DIR = Path(env.str("BUILD_CACHE_DIR", default=str(VAR_DIR / "build-cache")))
BUILD_CACHE_DAYS = env.int("BUILD_CACHE_DAYS", default=7)
BUILD_CACHE_MB = env.int("BUILD_CACHE_MB", default=1024)
DEFAULT_BACKEND = env.str("DEFAULT_BACKEND", default="local")

# --- Runtime (the local data plane) -----------------------------------------------------
RUNTIME_BIND = env.str("RUNTIME_BIND", default="127.0.0.1")
RUNTIME_PORT = env.int("RUNTIME_PORT", default=8787)
# Deployment URLs are http://<host>.<RUNTIME_DOMAIN>:<RUNTIME_PUBLIC_PORT>/
RUNTIME_DOMAIN = env.str("RUNTIME_DOMAIN", default="localhost")
RUNTIME_PUBLIC_SCHEME = env.str("RUNTIME_PUBLIC_SCHEME", default="http")
RUNTIME_PUBLIC_PORT = env.int("RUNTIME_PUBLIC_PORT", default=RUNTIME_PORT)
# How the control plane reaches the runtime, and the runtime the control plane.
RUNTIME_URL = env.str("RUNTIME_URL", default=f"http://127.0.0.1:{RUNTIME_PORT}")
CONTROL_PLANE_URL = env.str("CONTROL_PLANE_URL", default="http://127.0.0.1:8000")
RUNTIME_TIMEOUT_SECONDS = env.float("RUNTIME_TIMEOUT_SECONDS", default=30.0)
# CPU time one invocation may hold its isolate's thread without a pause (waiting on fetch or
# a timer is a pause); past it the call stops with cpu_limit_exceeded.
RUNTIME_CPU_MS = env.int("RUNTIME_CPU_MS", default=10_000)
RUNTIME_MAX_BODY_BYTES = env.int("RUNTIME_MAX_BODY_BYTES", default=1024 * 1024)
RUNTIME_PROCESSES = env.int("RUNTIME_PROCESSES", default=os.cpu_count() or 1)
RUNTIME_IDLE_SECONDS = env.int("RUNTIME_IDLE_SECONDS", default=300)  # then an isolate is stopped
# A new deployment is loaded on the runtime hosts where its tenant's sandbox runs before it
# is marked ready, so its first call waits for no load; a build waits at most this long.
RUNTIME_PRELOAD_WAIT_SECONDS = env.float("RUNTIME_PRELOAD_WAIT_SECONDS", default=0.5)
# Resident memory a tenant's sandbox process aims to stay under (at most 3/4 of its memory
# limit): past it, its least recently used idle isolates are stopped (checked on every cold
# start and every 10 s).
RUNTIME_MEMORY_BUDGET_MB = env.int("RUNTIME_MEMORY_BUDGET_MB", default=2048)
RUNTIME_MAX_ISOLATES = env.int("RUNTIME_MAX_ISOLATES", default=200)  # per sandbox process
# Each tenant's isolates run in a sandbox process of its own, limited by the OS (cgroups where
# the machine allows): all the tenant's memory of every kind, its processes and threads, and
# the cores it may take.
RUNTIME_CELL_MEMORY_MB = env.int("RUNTIME_CELL_MEMORY_MB", default=1024)
RUNTIME_CELL_PIDS = env.int("RUNTIME_CELL_PIDS", default=512)
RUNTIME_CELL_CPUS = env.float("RUNTIME_CELL_CPUS", default=1.0)
RUNTIME_MAX_CELLS = env.int("RUNTIME_MAX_CELLS", default=64)  # per host process
RUNTIME_SPARE_CELLS = env.int("RUNTIME_SPARE_CELLS", default=1)  # started ahead of need
# Each host's journal of reports not yet acknowledged (kept across a host's restart).
RUNTIME_JOURNAL_DIR = env.str("RUNTIME_JOURNAL_DIR", default=str(BASE_DIR / "var" / "journal"))
# Isolates booted ahead of need per host process (about 7.5 MB each): first calls take one
# and skip the boot (~0.5 s); a burst of more first calls than spares waits for boots.
RUNTIME_SPARES = env.int("RUNTIME_SPARES", default=2)  # per sandbox
RUNTIME_MAX_CONCURRENCY = env.int("RUNTIME_MAX_CONCURRENCY", default=100)  # per deployment
# Where runtime hosts count the limits they share (invocations per minute per tenant, calls
# at once per deployment); empty: each host process counts alone.
RUNTIME_REDIS_URL = env.str("RUNTIME_REDIS_URL", default=REDIS_URL)
# Tests only: shifts the clock the runtime counts quota minutes by, so a test starts at the
# beginning of a minute instead of waiting for one.
RUNTIME_CLOCK_OFFSET_MS = env.int("RUNTIME_CLOCK_OFFSET_MS", default=0)
# How often a runtime host reports the CPU its tenants' sandboxes used (charged in usage).
RUNTIME_CPU_REPORT_MS = env.int("RUNTIME_CPU_REPORT_MS", default=5000)
# Heap limit of each deployment's isolate; over it, the isolate is stopped (not the host).
RUNTIME_MEMORY_MB = env.int("RUNTIME_MEMORY_MB", default=128)
# Outbound requests of tenant code: public addresses only, minus RUNTIME_EGRESS_DENY; when
# RUNTIME_EGRESS_ALLOW is set, only what it names (host names, ".domain" suffixes or IPs).
RUNTIME_EGRESS_ALLOW = env.list("RUNTIME_EGRESS_ALLOW", default=[])
RUNTIME_EGRESS_DENY = env.list("RUNTIME_EGRESS_DENY", default=[])
RUNTIME_MAX_RESULT_BYTES = env.int("RUNTIME_MAX_RESULT_BYTES", default=6 * 1024 * 1024)
# One secret per direction, each derived from SECRET_KEY unless set (a single machine then
# needs no extra configuration). RUNTIME_TOKEN: runtime hosts -> control plane (configs,
# secrets, ingest). PORTAL_INVOKE_TOKEN: the portal -> runtime (invoke a private worker, record
# the call as the portal's); the hosts get only its SHA-256.
RUNTIME_TOKEN = env.str(
    "RUNTIME_TOKEN",
    default=hmac.new(SECRET_KEY.encode(), b"runtime-token", hashlib.sha256).hexdigest(),
)
PORTAL_INVOKE_TOKEN = env.str(
    "PORTAL_INVOKE_TOKEN",
    default=hmac.new(SECRET_KEY.encode(), b"portal-invoke-token", hashlib.sha256).hexdigest(),
)

# --- Logs -------------------------------------------------------------------------------
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", default=7)
RUNTIME_MAX_LOG_LINES = env.int("RUNTIME_MAX_LOG_LINES", default=1000)  # per invocation
RUNTIME_MAX_LINE_BYTES = env.int("RUNTIME_MAX_LINE_BYTES", default=8192)
LOG_PAGE_SIZE = 200
SSE_HEARTBEAT_SECONDS = env.float("SSE_HEARTBEAT_SECONDS", default=15.0)
# --- Vercel back end ----------------------------------------------------------------------
VERCEL_API_URL = env.str("VERCEL_API_URL", default="https://api.vercel.com")
VERCEL_API_TOKEN = env.str("VERCEL_API_TOKEN", default="")
VERCEL_TEAM_ID = env.str("VERCEL_TEAM_ID", default="")
VERCEL_WORKER_PROJECT_ID = env.str("VERCEL_WORKER_PROJECT_ID", default="")
# Sent as x-vercel-protection-bypass when the platform invokes a deployment (keep Deployment
# Protection on, the secure choice).
VERCEL_PROTECTION_BYPASS = env.str("VERCEL_PROTECTION_BYPASS", default="")
# Files bigger than this are uploaded by SHA-1 (POST /v2/files) instead of sent inline.
# The operator's domain, added to the Vercel project (a wildcard): each deployment answers at
# <worker>--<id>--<tenant>.<domain> and each worker's production at <worker>--<tenant>.<domain>,
# aliases the platform assigns and moves. Tenants never see a vercel.app address.
VERCEL_ALIAS_DOMAIN = env.str("VERCEL_ALIAS_DOMAIN", default="")
VERCEL_INLINE_FILE_BYTES = env.int("VERCEL_INLINE_FILE_BYTES", default=64 * 1024)
VERCEL_BUILD_DEADLINE_SECONDS = env.int("VERCEL_BUILD_DEADLINE_SECONDS", default=45 * 60 + 300)
VERCEL_POLL_MAX_FAILURES = env.int("VERCEL_POLL_MAX_FAILURES", default=10)
# What the Vercel plan lets a function have (Pro: 800 s with Fluid compute, 3009 MB; Hobby:
# 300 s, 2048 MB). A worker's timeout becomes its function's maxDuration (plus the seconds its
# lines and record take to send after the answer) and its memory the function's memory (plus
# the Next.js server's own); a worker that needs more is refused before anything is sent.
VERCEL_MAX_DURATION_SECONDS = env.int("VERCEL_MAX_DURATION_SECONDS", default=300)
VERCEL_MAX_MEMORY_MB = env.int("VERCEL_MAX_MEMORY_MB", default=2048)
VERCEL_SERVER_MEMORY_MB = env.int("VERCEL_SERVER_MEMORY_MB", default=256)
# Where generated deployments push their log lines (must be reachable from Vercel).
PUBLIC_CONTROL_PLANE_URL = env.str("PUBLIC_CONTROL_PLANE_URL", default=CONTROL_PLANE_URL)
VERCEL_LOG_DRAIN_SECRET = env.str("VERCEL_LOG_DRAIN_SECRET", default="")
VERCEL_LOG_DRAIN_VERIFY = env.str("VERCEL_LOG_DRAIN_VERIFY", default="")

# --- Tenants' own domains (workers/domains.py, docs/domains.md) ---------------------------
# The resolvers that check verification records ("ip" or "ip:port"); empty: the system's.
DOMAINS_DNS_SERVERS = env.list("DOMAINS_DNS_SERVERS", default=[])
DOMAINS_DNS_TIMEOUT_SECONDS = env.float("DOMAINS_DNS_TIMEOUT_SECONDS", default=5.0)
# What tenants point their names at: a CNAME target (the edge's name) and/or its addresses.
DOMAINS_CNAME_TARGET = env.str("DOMAINS_CNAME_TARGET", default="")
DOMAINS_A_TARGETS = env.list("DOMAINS_A_TARGETS", default=[])
# A domain not verified yet is looked at again this often; a verified one, this often.
DOMAINS_PENDING_CHECK_SECONDS = env.int("DOMAINS_PENDING_CHECK_SECONDS", default=60)
DOMAINS_RECHECK_SECONDS = env.int("DOMAINS_RECHECK_SECONDS", default=3600)
# Names no tenant may claim (besides RUNTIME_DOMAIN, VERCEL_ALIAS_DOMAIN and PLATFORM_HOSTS,
# and every name under them): the operator's own domains.
DOMAINS_RESERVED = env.list("DOMAINS_RESERVED", default=[])

# --- Secrets ------------------------------------------------------------------------------
# Fernet keys for workers' secrets; the first encrypts, all decrypt (for rotation: put the
# new key first, run `manage.py rotate_secrets`, then drop the old one). By default one key
# derived from SECRET_KEY.
SECRETS_ENCRYPTION_KEYS = env.list(
    "SECRETS_ENCRYPTION_KEYS",
    default=[
        base64.urlsafe_b64encode(
            hmac.new(SECRET_KEY.encode(), b"worker-secrets", hashlib.sha256).digest()
        ).decode()
    ],
)

# --- Quotas (defaults; operators set per-tenant values in the admin) ----------------------
QUOTA_MAX_WORKERS = env.int("QUOTA_MAX_WORKERS", default=100)
QUOTA_MAX_DEPLOYMENTS_PER_HOUR = env.int("QUOTA_MAX_DEPLOYMENTS_PER_HOUR", default=60)
QUOTA_MAX_INVOCATIONS_PER_MINUTE = env.int("QUOTA_MAX_INVOCATIONS_PER_MINUTE", default=6000)
QUOTA_MAX_PAYLOAD_BYTES = env.int("QUOTA_MAX_PAYLOAD_BYTES", default=RUNTIME_MAX_BODY_BYTES)
# Each schedule fires at most once a minute (cron's finest step): 20 fire at most 1,200 runs
# an hour, each of which also counts against the waiting runs.
QUOTA_MAX_SCHEDULES = env.int("QUOTA_MAX_SCHEDULES", default=20)
QUOTA_MAX_API_KEYS = env.int("QUOTA_MAX_API_KEYS", default=50)
QUOTA_MAX_DRAINS = env.int("QUOTA_MAX_DRAINS", default=5)
QUOTA_MAX_EVENT_SUBSCRIPTIONS = env.int("QUOTA_MAX_EVENT_SUBSCRIPTIONS", default=10)
QUOTA_MAX_DOMAINS = env.int("QUOTA_MAX_DOMAINS", default=20)
QUOTA_MAX_SETTINGS = env.int("QUOTA_MAX_SETTINGS", default=500)
QUOTA_MAX_KV_NAMESPACES = env.int("QUOTA_MAX_KV_NAMESPACES", default=10)
QUOTA_MAX_KV_KEYS = env.int("QUOTA_MAX_KV_KEYS", default=100_000)
QUOTA_MAX_KV_BYTES = env.int("QUOTA_MAX_KV_BYTES", default=100 * 1024 * 1024)
QUOTA_MAX_KV_OPERATIONS_PER_MINUTE = env.int("QUOTA_MAX_KV_OPERATIONS_PER_MINUTE", default=60_000)
QUOTA_MAX_ENQUEUES_PER_MINUTE = env.int("QUOTA_MAX_ENQUEUES_PER_MINUTE", default=600)
QUOTA_MAX_SECRETS = env.int("QUOTA_MAX_SECRETS", default=500)
QUOTA_MAX_WAITING_RUNS = env.int("QUOTA_MAX_WAITING_RUNS", default=1000)
QUOTA_MAX_STORED_PAYLOAD_BYTES = env.int("QUOTA_MAX_STORED_PAYLOAD_BYTES", default=256 * 1024)

# --- Brand (white-label): the operator's; a tenant may override it ------------------------
PLATFORM_NAME = env.str("PLATFORM_NAME", default="Functions")
PLATFORM_LOGO_URL = env.str("PLATFORM_LOGO_URL", default="")
PLATFORM_COLOR = env.str("PLATFORM_COLOR", default="#2563eb")
PLATFORM_SUPPORT_EMAIL = env.str("PLATFORM_SUPPORT_EMAIL", default="")

# --- Email (invitations, accounts, notices); printed to the console unless configured ---------------------
INVITATION_DAYS = env.int("INVITATION_DAYS", default=7)  # then an invitation expires
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@localhost")
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
# Where mail sent outside a request links to (a tenant with its own portal domain: there).
PORTAL_URL = env.str("PORTAL_URL", default=f"http://127.0.0.1:{env.str('WEB_PORT', '8000')}")
# Mail about events members asked to hear about, at most this many per member per hour.
NOTICE_MAILS_PER_HOUR = env.int("NOTICE_MAILS_PER_HOUR", default=20)

# --- Durable runs ---------------------------------------------------------------------
# The retry policy of workers that set none: attempts in all (1 = no retry), the delay
# before the first retry (doubled each time, with jitter), the longest delay, and which
# failures of the function's own retry ("error": it threw; "timeout"; "limit": memory, CPU,
# result size). Failures of the platform (a host restarting, the quota) always retry.
RUN_MAX_ATTEMPTS = env.int("RUN_MAX_ATTEMPTS", default=3)
RUN_BACKOFF_SECONDS = env.float("RUN_BACKOFF_SECONDS", default=1.0)
RUN_MAX_DELAY_SECONDS = env.float("RUN_MAX_DELAY_SECONDS", default=300.0)
RUN_RETRY_ON = env.list("RUN_RETRY_ON", default=["error", "timeout", "limit"])
# A run whose attempt has not reported this long after its timeout is taken over by the
# sweep (its Celery worker died); a queued run this late is enqueued again (Redis lost it).
RUN_LEASE_MARGIN_SECONDS = env.float("RUN_LEASE_MARGIN_SECONDS", default=30.0)
RUN_RESULT_KEEP_DAYS = env.int("RUN_RESULT_KEEP_DAYS", default=30)

# --- Metrics ----------------------------------------------------------------------------
# Per-minute figures are kept this many days, per-hour ones this many (13 months): longer
# than raw invocations and log lines, so charts and usage outlive the logs.
METRICS_MINUTE_DAYS = env.int("METRICS_MINUTE_DAYS", default=14)
METRICS_HOUR_DAYS = env.int("METRICS_HOUR_DAYS", default=396)

# Tenants' log drains: paused after this many failed deliveries in a row; private addresses
# refused unless allowed (a test set-up delivering to itself).
DRAIN_MAX_FAILURES = env.int("DRAIN_MAX_FAILURES", default=10)
DRAIN_ALLOW_PRIVATE = env.bool("DRAIN_ALLOW_PRIVATE", default=False)

# Events sent to tenants' URLs: each delivery is tried this many times with backoff (about
# three hours in all) before it is marked failed; a subscription whose attempts fail this many
# times in a row is paused; events and their deliveries are kept this many days.
EVENT_ATTEMPTS = env.int("EVENT_ATTEMPTS", default=10)
EVENT_MAX_FAILURES = env.int("EVENT_MAX_FAILURES", default=30)
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=14)
