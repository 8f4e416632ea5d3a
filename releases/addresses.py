"""Which deployment a host serves: a deployment's own host, or a worker's production (its
canary and share, and, for a call made within a release generation, what production was
then). The runtime asks through the internal API (runtime_api) and caches the answer."""

from dataclasses import dataclass

from deployments.models import Deployment
from tenancy.access import acts
from workers.addresses import parse
from workers.models import Worker

from .production import serving_at

SUSPENDED = "This worker's tenant is suspended: it answers no calls until an operator resumes it."

# What serving a deployment leaves in the database: its program (the uploaded files, its
# source and lock), its build log and diagnostics, megabytes for a large upload, read for
# every host a runtime looks up otherwise.
UNSERVED = ("files", "source", "lockfile", "build_log", "diagnostics", "error_message")


def only_row(queryset):
    """The one row a unique filter names, or None, unordered: with an ORDER BY (`.first()`'s,
    or a model's own) Django compares every selected column with the ordering, which takes
    milliseconds for these wide joins."""
    return next(iter(queryset.order_by()[:1]), None)


@dataclass
class Served:
    deployment: Deployment
    alias: bool  # a worker's production URL (it moves with each promotion)
    generation: int | None = None
    canary: Deployment | None = None
    percent: int = 0


@dataclass
class NotServed:
    code: str
    message: str


def resolve(
    host: str, pinned: int | None = None, pinned_tenant: str = "", preloading: bool = False
) -> Served | NotServed:
    """`pinned`: the release generation a call between workers resolves at, honoured only
    for a production host of the caller's own tenant (`pinned_tenant`, its id).
    `preloading`: a deployment host still building is answered too once its code is stored,
    for a host to load it before it is ready (deployments.announce.preload); never to
    serve it."""
    address = parse(host)
    if address is None:
        return NotServed("deployment_not_found", f"No deployment {host}.")
    if address.deployment is not None:
        deployment = only_row(
            Deployment.objects.select_related("worker", "tenant", "artifact")
            .defer(*UNSERVED)
            .filter(short_id=address.deployment, worker__name=address.worker, tenant__slug=address.tenant)
        )  # fmt: skip
        if deployment is None:
            return NotServed("deployment_not_found", f"No deployment {host}.")
        if deployment.worker.tenant_id == deployment.tenant_id:
            deployment.worker.tenant = deployment.tenant  # read already (its limits use it)
        if not acts(deployment.tenant):
            return NotServed("tenant_suspended", SUSPENDED)
        building = deployment.status == Deployment.Status.BUILDING
        if preloading and building and deployment.artifact_id:
            return Served(deployment, alias=False)
        if deployment.status != Deployment.Status.READY:
            return NotServed(
                "deployment_not_ready",
                f"Deployment {host} is {deployment.status}, not ready; nothing is served for it.",
            )
        return Served(deployment, alias=False)
    worker = only_row(
        Worker.objects.select_related("tenant", "production__artifact", "canary")
        .defer(*(f"{which}__{field}" for which in ("production", "canary") for field in UNSERVED))
        .filter(name=address.worker, tenant__slug=address.tenant)
    )  # fmt: skip
    if worker is None:
        return NotServed("deployment_not_found", f"No worker {host}.")
    for own in (worker.production, worker.canary):
        # Its worker and tenant are the rows just read: not joined a second time (each join
        # here costs Postgres's planner more than the rows cost to read).
        if own is not None and own.worker_id == worker.pk and own.tenant_id == worker.tenant_id:
            own.worker, own.tenant = worker, worker.tenant
    if not acts(worker.tenant):
        return NotServed("tenant_suspended", SUSPENDED)
    # One read gives the worker's pointers and its tenant's generation together: the
    # generation an answer claims is the one its deployments were current in.
    production, canary, percent = worker.production, worker.canary, worker.canary_percent
    generation = worker.tenant.generation
    if pinned is not None and pinned_tenant == str(worker.tenant_id) and pinned < generation:
        then = serving_at(worker, pinned)
        if then is not None:
            production, canary, percent = then.production, then.canary, then.canary_percent
        generation = pinned
    if production is None or production.status != Deployment.Status.READY:
        return NotServed("deployment_not_ready", f"Worker {host} has no ready deployment yet.")
    ready_canary = (
        canary if canary is not None and canary.status == Deployment.Status.READY else None
    )
    return Served(production, True, generation, ready_canary, percent if ready_canary else 0)


def served_through(deployment: Deployment) -> int | None:
    """The generation of its tenant that a call reaching `deployment` through its worker's
    production address belongs to: the current one while it is production, else the last in
    which it was (a back end that moves aliases itself may still send it calls a moment after
    the switch); None when it never served production."""
    worker = Worker.objects.select_related("tenant").get(pk=deployment.worker_id)  # one read
    if worker.production_id == deployment.pk:
        return worker.tenant.generation
    changes = worker.production_changes.order_by("-generation")
    last = changes.filter(production=deployment).first()
    if last is None:
        return None
    after = changes.filter(generation__gt=last.generation).last()
    return after.generation - 1 if after is not None else last.generation
