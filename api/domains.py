"""A tenant's own domains over the API (what the portal's Domains page does): add a hostname
(the records to create are answered), check it now, send its paths to workers, remove it.
`manage` scope, audited."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from ninja import Field, Query, Router, Schema, Status

from releases.domains import changed, removed
from tenancy.access import Action
from tenancy.audit import record
from tenancy.models import LABEL_PATTERN
from tenancy.quotas import QuotaExceeded
from workers.domains import TOKEN_PREFIX, DomainError, add, check, set_route
from workers.hosts import forget_portal_domains
from workers.models import Domain, Worker

from .errors import ApiError, require
from .schemas import SPACE, ErrorOut, Strict
from .workers import tenant_for

router = Router(tags=["domains"])
ERRORS = {frozenset({401, 403, 404}): ErrorOut}
HOSTNAME = rf"^[^\x00{SPACE}/:@?#*]+$"
PREFIX = rf"^/[^\x00{SPACE}?#*]*$"


class RecordOut(Schema):
    type: str = Field(description="TXT, CNAME, A or AAAA.")
    name: str
    value: str
    purpose: str


class RouteOut(Schema):
    prefix: str = Field(description="Paths starting with it (the longest prefix wins).")
    worker: str = Field(description="The worker whose production serves them.")


class DomainOut(Schema):
    id: UUID
    hostname: str = Field(description="As stored: lowercase, punycode for international names.")
    status: Literal["pending", "verified", "failing"] = Field(
        description="pending: its TXT record not seen yet; verified: served; failing: its "
        "record went after it was verified (not served)."
    )
    verifiedAt: datetime | None
    failingSince: datetime | None
    lastError: str | None = Field(description="What the last check found wrong.")
    checkedAt: datetime | None
    nextCheckAt: datetime | None
    records: list[RecordOut] = Field(description="What to create at the DNS provider.")
    backendVerified: bool | None = Field(
        description="Where the `/` worker runs on a back end that serves names itself "
        "(Vercel): whether it verified the name too (its own record is in `records` while "
        "not); null elsewhere."
    )
    backendError: str | None
    portal: bool = Field(description="Serves the tenant's portal under its brand, not workers.")
    routes: list[RouteOut]
    createdAt: datetime
    addedBy: str


class DomainList(Schema):
    domains: list[DomainOut]


class DomainIn(Strict):
    hostname: str = Field(min_length=1, max_length=253, pattern=HOSTNAME)
    tenant: str | None = Field(None, pattern=LABEL_PATTERN)


class RouteIn(Strict):
    prefix: str = Field("/", min_length=1, max_length=200, pattern=PREFIX)
    worker: str = Field(min_length=1, max_length=30, pattern=LABEL_PATTERN)


class RoutesIn(Strict):
    routes: list[RouteIn] = Field(max_length=50, description="Every route; the ones left out go.")
    portal: bool = Field(False, description="Serve the tenant's portal here instead of workers.")


def records_of(d: Domain) -> list[dict]:
    records = [{"type": "TXT", "name": d.record_name, "value": f"{TOKEN_PREFIX}{d.token}",
                "purpose": "shows the name is yours"}]  # fmt: skip
    if settings.DOMAINS_CNAME_TARGET:
        records.append({"type": "CNAME", "name": d.hostname, "value": settings.DOMAINS_CNAME_TARGET,
                        "purpose": "brings its requests here"})  # fmt: skip
    for address in settings.DOMAINS_A_TARGETS:
        records.append({"type": "AAAA" if ":" in address else "A", "name": d.hostname,
                        "value": address, "purpose": "brings its requests here"})  # fmt: skip
    for extra in d.remote_records if d.remote_verified is False else []:
        records.append({**extra, "purpose": "the back end serving it asks for it too"})
    return records


def domain_json(d: Domain) -> dict:
    return {
        "id": d.code, "hostname": d.hostname, "status": d.status, "verifiedAt": d.verified_at,
        "failingSince": d.failing_since, "lastError": d.last_error or None,
        "checkedAt": d.checked_at, "nextCheckAt": d.next_check_at, "records": records_of(d),
        "backendVerified": d.remote_verified, "backendError": d.remote_error or None,
        "portal": d.portal,
        "routes": [{"prefix": r.prefix, "worker": r.worker.name}
                   for r in d.routes.select_related("worker").order_by("prefix")],
        "createdAt": d.created, "addedBy": d.added_by,
    }  # fmt: skip


def domain_for(request, code: UUID) -> Domain:
    domain = Domain.objects.visible_to(request.principal).select_related("tenant")
    found = domain.filter(code=code).first()
    if found is None:
        raise ApiError(404, "not_found", "No such domain.")
    require(request, Action.MANAGE, found)
    return found


@router.get(
    "/domains",
    response={200: DomainList, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="The tenant's own domains, their state and the records they need",
)
def list_domains(request, tenant: str = Query(None, pattern=LABEL_PATTERN, max_length=50)):
    chosen = tenant_for(request, tenant, Action.MANAGE, viewing=True)
    return {"domains": [domain_json(d) for d in Domain.objects.filter(tenant=chosen)]}


@router.post(
    "/domains",
    response={201: DomainOut, frozenset({400, 401, 403, 404, 409}): ErrorOut},
    summary="Claim a hostname; answered with the TXT record that verifies it",
)
def add_domain(request, body: DomainIn):
    tenant = tenant_for(request, body.tenant, Action.MANAGE)
    try:
        domain = add(tenant, body.hostname, request.principal.label)
    except DomainError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    except QuotaExceeded as exc:
        raise ApiError(exc.status, "quota_exceeded", exc.message) from exc
    record(request, tenant, "domain.add", domain.hostname)
    return Status(201, domain_json(domain))


@router.get("/domains/{uuid:id}", response={200: DomainOut, **ERRORS}, summary="One domain")
def get_domain(request, id: UUID):
    return domain_json(domain_for(request, id))


@router.post(
    "/domains/{uuid:id}/check",
    response={200: DomainOut, **ERRORS},
    summary="Look for its record now (else it is looked at every minute until seen)",
)
def check_domain(request, id: UUID):
    domain = check(domain_for(request, id))
    record(request, domain.tenant, "domain.check", domain.hostname, status=domain.status)
    changed(domain)
    return domain_json(domain)


@router.put(
    "/domains/{uuid:id}/routes",
    response={200: DomainOut, frozenset({400, 401, 403, 404}): ErrorOut},
    summary="What the domain serves: workers' production by path (all routes), or the portal",
)
def set_routes(request, id: UUID, body: RoutesIn):
    domain = domain_for(request, id)
    workers = {w.name: w for w in Worker.objects.filter(tenant=domain.tenant)}
    try:
        with transaction.atomic():
            domain.routes.all().delete()
            domain.portal = body.portal
            domain.save(update_fields=["portal"])
            for route in body.routes:
                if route.worker not in workers:
                    raise DomainError(f"No worker {route.worker} in this tenant.")
                set_route(domain, workers[route.worker], route.prefix)
    except DomainError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    forget_portal_domains()
    record(request, domain.tenant, "domain.routes", domain.hostname, portal=body.portal,
           routes={r.prefix: r.worker for r in body.routes})  # fmt: skip
    changed(domain)
    return domain_json(domain)


@router.delete("/domains/{uuid:id}", response={204: None, **ERRORS}, summary="Stop serving it")
def remove_domain(request, id: UUID):
    domain = domain_for(request, id)
    removed(domain)
    domain.delete()
    record(request, domain.tenant, "domain.remove", domain.hostname)
    return HttpResponse(status=204)
