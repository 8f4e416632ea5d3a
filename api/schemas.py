"""The JSON API's schemas: requests are validated with them and the OpenAPI description is
generated from them (django-ninja), so the two cannot disagree. Names are camelCase; one
name has one meaning: `id` is always ours, `backendId` a back end's own id."""

import re
from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import ConfigDict, field_validator

from deployments.contract import DEPLOYMENT_STATUSES, LOG_LEVELS
from workers_portal.models import LABEL_PATTERN

# Text the database can hold: Postgres refuses NUL characters, so the description does too.
TEXT = r"^[^\x00]*$"
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
    latestDeployment: DeploymentOut | None
    createdAt: datetime


class DeployedOut(WorkerOut):
    deployment: DeploymentOut


class WorkerList(Schema):
    workers: list[WorkerOut]


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
        pattern=r"^[^\x00]*\S[^\x00]*$",
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
