"""Tenants' own domains where the back end serves names itself (Vercel): the worker its `/`
route names runs there, so the name is claimed on the back end too (its own challenge, when
it asks one, shown to the tenant beside the platform's record), verified there, and pointed
at the worker's production, again at every production change (releases.aliases). A name
the platform no longer serves (removed, its record gone, its route moved to a worker served
by the runtime) is released there. Path prefixes other than `/` are the runtime's: a name
on Vercel serves one worker."""

import random

from celery import shared_task
from django.db import transaction
from django.db.models import Q

from deployments.backends import NAMES, BuildFailed, TransientBackendError, get_backend
from workers.domains import check_due
from workers.models import Domain

MAX_TRIES = 8


def remote_production(domain: Domain):
    """The production its `/` route serves, when a back end that serves names runs it."""
    if domain.portal:
        return None
    root = domain.routes.select_related("worker__production").filter(prefix="/").first()
    production = root.worker.production if root else None
    if production is None or not production.runs_on.remote:
        return None
    return production


def release(hostname: str) -> None:
    for name in NAMES:
        backend = get_backend(name)
        if backend.remote:
            backend.release_domain(hostname)


def sync_one(domain: Domain) -> str:
    production = remote_production(domain) if domain.status == Domain.Status.VERIFIED else None
    if production is None:
        if domain.remote_verified is not None:
            release(domain.hostname)
            Domain.objects.filter(pk=domain.pk).update(
                remote_verified=None, remote_records=[], remote_error=""
            )
            return "released"
        return "nothing to do"
    backend = production.runs_on
    try:
        if domain.remote_verified is None:
            found = backend.claim_domain(domain.hostname)
        elif not domain.remote_verified:
            found = backend.verify_domain(domain.hostname)
        else:
            found = None
        if found is None or found.verified:
            backend.point_domain(domain.hostname, production)
    except BuildFailed as exc:
        Domain.objects.filter(pk=domain.pk).update(remote_error=exc.message[:500])
        return "failed"
    if found is not None:
        Domain.objects.filter(pk=domain.pk).update(
            remote_verified=found.verified,
            remote_records=[] if found.verified else found.records,
            remote_error=found.reason[:500],
        )
        return "verified" if found.verified else "waiting"
    return "pointed"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_TRIES)
def sync_domain(self, domain_pk: int) -> str:
    domain = Domain.objects.filter(pk=domain_pk).first()
    if domain is None:
        return "gone"
    try:
        return sync_one(domain)
    except TransientBackendError as exc:
        wait = (
            exc.retry_after if exc.retry_after is not None else min(60.0, 2.0**self.request.retries)
        )
        raise self.retry(countdown=wait * random.uniform(1.0, 1.2), exc=exc) from exc  # noqa: S311


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_TRIES)
def release_domain(self, hostname: str) -> None:
    try:
        release(hostname)
    except TransientBackendError as exc:
        raise self.retry(countdown=min(60.0, 2.0**self.request.retries), exc=exc) from exc


def changed(domain: Domain) -> None:
    """After a change to the domain commits (checked, routed): the back end follows, where
    one serves its `/` worker or holds the name."""
    if domain.remote_verified is not None or remote_production(domain) is not None:
        transaction.on_commit(lambda: sync_domain.delay(domain.pk))


def removed(domain: Domain) -> None:
    if domain.remote_verified is not None:
        hostname = domain.hostname
        transaction.on_commit(lambda: release_domain.delay(hostname))


def waiting_on_back_ends():
    """Domains whose state on a back end is behind the platform's: verified here but not
    there (or not claimed yet), or claimed there but no longer served here."""
    behind = Q(status=Domain.Status.VERIFIED) & ~Q(remote_verified=True)
    gone = ~Q(status=Domain.Status.VERIFIED) & Q(remote_verified__isnull=False)
    return Domain.objects.filter(behind | gone).filter(routes__prefix="/").distinct()


@shared_task
def check_domains() -> int:
    """The beat's tick: the platform's own checks that are due, then the back ends' (a claim
    waiting for its challenge is asked again on each tick)."""
    checked = check_due()
    for domain in waiting_on_back_ends()[:100]:
        try:
            sync_one(domain)
        except TransientBackendError:
            continue  # the next tick asks again
    return checked
