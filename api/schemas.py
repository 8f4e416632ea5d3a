"""The JSON API's schemas: requests are validated with them and the OpenAPI description is
generated from them (django-ninja), so the two cannot disagree. Names are camelCase; one
name has one meaning: `id` is always ours, `backendId` a back end's own id."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from ninja import Field, Schema
from pydantic import ConfigDict

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


class DeploymentOut(Schema):
    id: UUID
    status: DeploymentStatus
    backend: str
    functions: list[str]
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


class DeployIn(Strict):
    name: str = Field(
        min_length=1,
        max_length=30,
        pattern=LABEL_PATTERN,
        description="Lowercase letters, digits and single hyphens; part of the worker's URL.",
    )
    code: str = Field(
        pattern=r"^[^\x00]*\S[^\x00]*$",
        description="The TypeScript module (not blank, no NUL characters).",
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
