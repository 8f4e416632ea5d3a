"""The JSON API's schemas: requests are validated with them and the OpenAPI description is
generated from them (django-ninja), so the two cannot disagree. Names are camelCase; one
name has one meaning: `id` is always ours, `backendId` a back end's own id."""

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID
from zoneinfo import available_timezones

from ninja import Field, Schema
from pydantic import ConfigDict, field_validator

from deployments.contract import DEPLOYMENT_STATUSES, LOG_LEVELS
from tenancy.models import LABEL_PATTERN

# Text the database can hold: Postgres refuses NUL characters, so the description does too.
TEXT = r"^[^\x00]*$"
# Every character that is a space to ECMAScript (the description's regex dialect), to Python or
# to pydantic's Rust engine, named one by one: `\s` means three different sets (U+0085 is a space
# to two of them, U+FEFF to one), so no pattern here uses it (nor \d, \w or `.`).
SPACE = r"\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = rf"^[^\x00]*[^\x00{SPACE}][^\x00]*$"
DeploymentStatus = Literal[tuple(DEPLOYMENT_STATUSES)]  # type: ignore[valid-type]
LogLevel = Literal[tuple(LOG_LEVELS)]  # type: ignore[valid-type]


class Strict(Schema):
    """Requests with fields the description does not name are refused (400)."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorDetail


class PackageOut(Schema):
    name: str
    version: str
    registry: Literal["npm", "jsr", "https"]


class Problem(Schema):
    file: str
    line: int
    column: int
    message: str


class DeploymentOut(Schema):
    id: UUID
    status: DeploymentStatus
    backend: str
    entry: str = Field(description="The entry module.")
    files: list[str] = Field(description="The paths of the deployment's files.")
    functions: list[str]
    httpHandler: bool = Field(
        description="Whether its default export serves raw HTTP on every path but /api/invoke/*."
    )
    packages: list[PackageOut] = Field(description="The packages its build pinned.")
    lockfile: str | None = Field(description="The lockfile pinning them (JSON), if any.")
    errorMessage: str | None
    backendId: str | None = Field(description="The back end's own id for this deployment.")
    url: str | None = Field(description="Where this one deployment answers (once ready).")
    createdAt: datetime
    readyAt: datetime | None
    buildStep: str | None = Field(description="What its build does now, until it ends.")
    problems: list[Problem] = Field(
        description="Where its build failed: each problem in the tenant's own file."
    )
    previewOnly: bool = Field(
        description="Deployed with `promote: false`: it does not go live by itself."
    )


class CanarySide(Schema):
    deployment: UUID
    calls: int = Field(description="Calls it answered since the canary started.")
    errors: int = Field(description="Of those, the ones that failed (or answered 5xx).")
    errorRate: float = Field(description="Per cent of its calls that failed.")
    p50Ms: float | None
    p95Ms: float | None


class CanaryOut(Schema):
    deployment: "DeploymentOut"
    percent: int = Field(description="Share of production traffic it takes, 1-99.")
    since: datetime | None
    startedBy: str
    autoRollback: bool
    margin: float = Field(description="Error-rate points over production that roll it back.")
    minCalls: int = Field(description="Calls it must answer before the rule judges it.")
    production: CanarySide
    canary: CanarySide


class LimitsOut(Schema):
    """What the worker's deployments run with: its own limits, else its tenant's, else the
    platform's (operators set them; `functions dev` runs with the same)."""

    timeoutMs: int = Field(description="Wall-clock limit of one call.")
    cpuMs: int = Field(description="CPU a call may hold its isolate without a pause.")
    memoryMb: int = Field(description="Heap limit of a deployment's isolate.")
    maxConcurrency: int = Field(description="Calls one deployment runs at once.")
    maxResultBytes: int
    maxLogLines: int = Field(description="Console lines kept per call.")
    maxLineBytes: int = Field(description="Longest console line; longer ones are cut.")
    maxBodyBytes: int = Field(description="Largest request body.")
    invocationsPerMinute: int = Field(description="The tenant's calls per minute, all workers.")


class WorkerOut(Schema):
    id: UUID
    name: str
    tenant: str
    url: str = Field(description="The stable URL that serves the production deployment.")
    public: bool
    production: DeploymentOut | None
    productionSince: datetime | None
    promotedBy: str = Field(description="Who pointed production where it is, as it was.")
    autoPromote: bool = Field(description="Ready deployments go live by themselves.")
    canary: CanaryOut | None = Field(description="A new deployment taking part of the traffic.")
    lastCanaryNote: str = Field(description="How the last canary ended, when it ended by itself.")
    latestDeployment: DeploymentOut | None
    limits: LimitsOut
    createdAt: datetime


class DeployedOut(WorkerOut):
    deployment: DeploymentOut


class WorkerList(Schema):
    workers: list[WorkerOut]
    next: int | None = Field(
        None, description="Pass as `after` for the next page; null on the last."
    )


class DeploymentList(Schema):
    deployments: list[DeploymentOut]


# A path inside the upload: 1 to 10 parts of letters, digits and _ . @ + = , - (a part never
# starts with a dot or a dash, so "..", "." and hidden files are not paths).
PATH_PATTERN = (
    r"^[A-Za-z0-9_@][A-Za-z0-9_.@+=,-]{0,99}(/[A-Za-z0-9_@][A-Za-z0-9_.@+=,-]{0,99}){0,9}$"
)


class DeployIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["code"]}, {"required": ["files"]}, {"required": ["archive"]}]
        },
    )

    name: str = Field(
        min_length=1,
        max_length=30,
        pattern=LABEL_PATTERN,
        description="Lowercase letters, digits and single hyphens; part of the worker's URL.",
    )
    # Absent unless sent (never null): the description and the validation agree.
    code: str = Field(
        None,
        pattern=NOT_BLANK,
        description="One TypeScript module, deployed as index.ts (or as `entry`). Not blank, "
        "no NUL characters. Send exactly one of `code`, `files` and `archive`.",
    )
    files: dict[str, str] = Field(
        None,
        json_schema_extra=lambda schema: schema.update(
            type="object",
            minProperties=1,
            propertyNames={"pattern": PATH_PATTERN, "maxLength": 1000},
            additionalProperties={"type": "string", "pattern": TEXT},
        ),
        description="Path -> text of every file of the worker: .ts/.js modules that import "
        'each other with relative paths, and optionally package.json ("dependencies", and '
        '"main" for the entry).',
    )
    archive: str = Field(
        None,
        min_length=4,
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
        json_schema_extra={"contentEncoding": "base64", "contentMediaType": "application/gzip"},
        description="The worker's directory as a .tar.gz, base64-encoded.",
    )
    entry: str = Field(
        None,
        pattern=PATH_PATTERN,
        max_length=1000,
        description="The entry module: the name `code` is deployed as, or one of `files` or "
        '`archive` (by default index.ts, or what package.json "main" names).',
    )

    @field_validator("files")
    @classmethod
    def paths_and_texts(cls, files: dict[str, str]) -> dict[str, str]:
        for path, text in files.items():
            if not re.match(PATH_PATTERN, path) or len(path) > 1000:
                raise ValueError(f"{path!r} is not a path of the upload ({PATH_PATTERN})")
            if "\x00" in text:
                raise ValueError(f"{path} contains a NUL character")
        if not files:
            raise ValueError("at least one file")
        return files

    updateLock: bool = Field(
        False,
        strict=True,
        description="Resolve packages afresh instead of starting from the versions the "
        "worker's production deployment pinned.",
    )
    tenant: str | None = Field(
        None,
        pattern=LABEL_PATTERN,
        description="The tenant's slug; needed only by members of several tenants.",
    )
    promote: bool = Field(
        True,
        strict=True,
        description="false: when ready it stays a preview, whatever the worker's auto-promote "
        "(promote it with POST /workers/{id}/production).",
    )


class CanaryIn(Strict):
    deployment: UUID = Field(description="A ready deployment of this worker, not production.")
    percent: int = Field(ge=1, le=99, description="Share of production traffic.")
    autoRollback: bool | None = Field(
        None, strict=True, description="Roll back by itself when it fails more than production."
    )
    margin: float | None = Field(
        None, strict=True, ge=0, le=100,
        description="Error-rate points over production that roll it back.",
    )  # fmt: skip
    minCalls: int | None = Field(
        None, ge=1, le=100000, description="Calls it must answer before the rule judges it."
    )

    @field_validator("percent", "minCalls", mode="before")
    @classmethod
    def json_integer(cls, value):
        """A JSON integer, which 26.0 is too; never a string or a boolean."""
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            raise ValueError("must be an integer")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("must be an integer")
            return int(value)
        return value


class ReleaseIn(Strict):
    name: str = Field(min_length=1, max_length=100, pattern=NOT_BLANK)
    deployments: list[UUID] = Field(
        min_length=1, max_length=50, description="One ready deployment per worker."
    )


class ReleaseItemOut(Schema):
    worker: UUID
    workerName: str
    deployment: DeploymentOut


class ReleaseOut(Schema):
    id: UUID
    name: str
    status: Literal["draft", "live", "reverted"]
    items: list[ReleaseItemOut]
    createdBy: str
    createdAt: datetime
    promotedBy: str
    promotedAt: datetime | None
    revertedBy: str
    revertedAt: datetime | None
    previous: dict[str, UUID | None] = Field(
        description="What each worker (by id) served before the promotion; a revert restores it."
    )


class ReleaseList(Schema):
    releases: list[ReleaseOut]


class ProductionIn(Strict):
    id: UUID = Field(description="A ready deployment of this worker.")


class LogLine(Schema):
    id: int
    requestId: str
    seq: int
    function: str
    level: LogLevel
    message: str
    timestamp: datetime
    deploymentId: UUID = Field(description="Our id of the deployment that printed it.")


class LogPage(Schema):
    lines: list[LogLine]
    cursor: int


class DrainStored(Schema):
    stored: int


class DrainOk(Schema):
    ok: bool


class FilesOut(Schema):
    entry: str
    files: dict[str, str] = Field(description="Path -> text of every file deployed.")


# --- durable runs -----------------------------------------------------------------------

RunStatus = Literal[
    "queued", "running", "retrying", "sleeping", "waiting", "succeeded", "failed", "dead"
]
Outcome = Literal[
    "running", "ok", "error", "timeout", "limit", "permanent", "platform", "lost", "parked"
]
FUNCTION_PATTERN = r"^[A-Za-z_$][A-Za-z0-9_$]*$"


class AttemptError(ErrorDetail):
    stack: str = Field(
        None, description="Where it threw: file:line:col of the uploaded files, when it threw."
    )  # type: ignore[assignment]


class AttemptOut(Schema):
    number: int
    deployment: UUID
    startedAt: datetime
    finishedAt: datetime | None
    outcome: Outcome = Field(
        description="ok; error (it threw), timeout, limit (memory, CPU, result size); "
        "permanent (no retry mends it); platform (not the code's); lost (its process died); "
        "parked (its code slept or waited for an event: no failure)."
    )
    statusCode: int | None
    error: AttemptError | None
    durationMs: float | None
    requestId: str | None = Field(description="The call's request id: its console lines.")
    logs: list[dict[str, Any]]


class StepOut(Schema):
    name: str
    kind: Literal["run", "sleep", "wait"]
    status: Literal["done", "failed", "parked"]
    tries: int
    startedAt: datetime
    finishedAt: datetime | None
    result: Any = Field(None, description="What it finished with (an event's payload for a wait).")
    error: str | None = Field(description="Its last failure, while it had not finished.")
    until: datetime | None = Field(description="When a sleep ends, or a wait times out.")
    event: str | None = Field(description="The event a wait waits for.")
    match: dict[str, Any] | None = Field(description="Fields the event's payload must have.")
    requestId: str | None = Field(description="The call that ran it last: its console lines.")
    logs: list[dict[str, Any]] = Field(
        description="The console lines its code printed in that call (not those of steps "
        "running beside it)."
    )


class RunEventIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    payload: Any = Field(None, description="Any JSON: what the wait answers.")


class RunEventOut(Schema):
    name: str
    delivered: list[UUID] = Field(description="The runs it was given to.")


class RunEventsIn(RunEventIn):
    worker: UUID = Field(description="To every run of this worker waiting for the event.")


class RunOut(Schema):
    id: UUID
    worker: UUID
    workerName: str
    deployment: UUID
    function: str
    trigger: Literal["async", "cron", "replay", "enqueue"]
    status: RunStatus
    result: Any = Field(None, description="The function's result, once succeeded.")
    error: ErrorDetail | None = Field(description="The last failure, while and after retrying.")
    payload: Any = None
    attemptCount: int
    maxAttempts: int
    nextAttemptAt: datetime | None
    idempotencyKey: str | None
    replayOf: UUID | None
    schedule: UUID | None
    discarded: bool
    createdAt: datetime
    startedAt: datetime | None
    finishedAt: datetime | None
    attempts: list[AttemptOut] = Field(description="Every attempt (empty in lists).")
    steps: list[StepOut] = Field(description="Its durable steps, in order (empty in lists).")


class RunList(Schema):
    runs: list[RunOut]
    next: int | None = Field(description="Pass as `before` for the next page.")


class ReplayOn(Strict):
    onProduction: bool = Field(
        True, strict=True, description="On the worker's production now (else the deployment "
        "it first ran on).",
    )  # fmt: skip


class ReplayIn(ReplayOn):
    fromStep: str | None = Field(
        None, min_length=1, max_length=200, description="Keep the steps the run finished before "
        "this one (they are not run again); this step and the ones after it run again.",
    )  # fmt: skip


class ReplayManyIn(ReplayOn):
    worker: UUID | None = Field(None, description="Only this worker's dead letters.")
    tenant: str | None = Field(None, pattern=LABEL_PATTERN)


RetryKind = Literal["error", "timeout", "limit"]


class RetryPolicyIn(Strict):
    attempts: int = Field(ge=1, le=20, description="Attempts in all, the first included.")
    backoffSeconds: float = Field(ge=0, le=3600, description="Delay before the first retry.")
    maxDelaySeconds: float = Field(ge=0, le=86400, description="The longest delay.")
    retryOn: list[RetryKind] = Field(max_length=3, description="Failures that are retried.")

    @field_validator("attempts", mode="before")
    @classmethod
    def json_integer(cls, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be an integer")
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)

    @field_validator("backoffSeconds", "maxDelaySeconds", mode="before")
    @classmethod
    def json_number(cls, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return value


class RetryPolicyOut(Schema):
    attempts: int
    backoffSeconds: float
    maxDelaySeconds: float
    retryOn: list[RetryKind]


TimeZone = Literal[tuple(sorted(available_timezones()))]  # type: ignore[valid-type]
CRON_PATTERN = r"^[ \t]*[!-~]+([ \t]+[!-~]+){4}[ \t]*$"  # ASCII: one meaning in any engine


class ScheduleIn(Strict):
    function: str = Field(min_length=1, max_length=200, pattern=FUNCTION_PATTERN)
    cron: str = Field(
        max_length=100, pattern=CRON_PATTERN,
        description="Five fields: minute hour day-of-month month day-of-week (a value out "
        "of range is a 409).",
    )  # fmt: skip
    timeZone: TimeZone = "UTC"
    payload: Any = Field(None, description="The JSON each run gets.")
    paused: bool = Field(False, strict=True)


class ScheduleChangeIn(Strict):
    function: str | None = Field(None, min_length=1, max_length=200, pattern=FUNCTION_PATTERN)
    cron: str | None = Field(None, max_length=100, pattern=CRON_PATTERN)
    timeZone: TimeZone | None = None
    payload: Any = None
    paused: bool | None = Field(None, strict=True)


class ScheduleOut(Schema):
    id: UUID
    worker: UUID
    function: str
    cron: str
    timeZone: str
    payload: Any = None
    paused: bool
    nextFirings: list[datetime] = Field(description="The next three, while not paused.")
    lastFiredAt: datetime | None
    missed: int = Field(description="Firings skipped after outages (one catch-up each time).")
    createdAt: datetime


class ScheduleList(Schema):
    schedules: list[ScheduleOut]


# --- invocation history -------------------------------------------------------------------


class InvocationOut(Schema):
    requestId: str = Field(description="Its console lines: GET /api/workers/{id}/logs/poll.")
    deployment: UUID
    function: str = Field(description="The exported function, or `fetch` for raw HTTP.")
    trigger: str
    status: Literal["ok", "error", "timeout", "crashed"]
    statusCode: int
    errorMessage: str | None
    durationMs: float
    cold: bool = Field(description="Its isolate was started for it.")
    lines: int = Field(description="Console lines it printed.")
    startedAt: datetime


class InvocationList(Schema):
    invocations: list[InvocationOut]
    next: int | None = Field(description="Pass as `before` for the next page.")


class UsageDayOut(Schema):
    day: str = Field(description="YYYY-MM-DD, UTC.")
    invocations: int
    gbSeconds: float = Field(description="Each call's duration times its memory limit.")
    buildSeconds: float
    logLines: int
    logBytes: int
    runs: int = Field(description="Async and scheduled runs accepted.")
    cpuSeconds: float = Field(description="CPU time of the tenant's sandbox processes.")
    kvReads: int = Field(description="Key-value reads by workers' code (cached ones too).")
    kvWrites: int = Field(description="Key-value writes and deletes by workers' code.")
    kvBytes: int = Field(description="Bytes the tenant's namespaces held at the day's end.")
    queueMessages: int = Field(description="Runs enqueued by workers' code (ctx.enqueue).")


class UsageOut(Schema):
    tenant: str
    days: list[UsageDayOut]


# --- the CLI's sign-in -------------------------------------------------------------------


class LoginIn(Strict):
    client: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f]+$",
        description="What asks, as the approval page shows it, e.g. `functions 0.1 on laptop`.",
    )


class LoginOut(Schema):
    code: str = Field(description="The code the person sees on both screens, e.g. BCDF-GHJK.")
    approveUrl: str = Field(description="Where a member approves the sign-in.")
    pollToken: str = Field(description="Only for the asker: what it polls with.")
    expiresAt: datetime
    interval: int = Field(description="Seconds to wait between polls.")


class LoginPollIn(Strict):
    pollToken: str = Field(min_length=1, max_length=100, pattern=TEXT)


class LoginPollOut(Schema):
    status: Literal["pending", "approved", "denied", "expired", "collected"] = Field(
        description="`approved` comes once, with the key; later polls say `collected`."
    )
    token: str | None = Field(description="The API key (with `approved` only).")
    tenant: str | None = Field(description="The tenant it acts in (with `approved` only).")
    scopes: list[str] | None = Field(description="Its scopes (with `approved` only).")
