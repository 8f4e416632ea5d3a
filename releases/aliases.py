"""Moving production aliases on back ends that serve production themselves (Vercel): after
a change commits, each worker's alias is pointed at what it now serves. The task reads the
worker's production when it runs, so of two quick promotions the later one always wins, and
running it twice changes nothing."""

import random

from celery import shared_task

from deployments.backends import BuildFailed, TransientBackendError
from workers.models import Domain, Worker

MAX_TRIES = 8


def domains_served_by(worker) -> list[str]:
    """The tenant's names whose `/` the worker serves, verified here and on the back end."""
    return list(
        Domain.objects.filter(
            routes__worker=worker, routes__prefix="/", status=Domain.Status.VERIFIED,
            remote_verified=True,
        ).values_list("hostname", flat=True)
    )  # fmt: skip


def move_one(pk: int) -> dict[str, str]:
    """Point the worker's alias at its production, and look again afterwards: a change that
    committed meanwhile may have had its own move overtaken by this one, so the move is
    repeated until the production it made is still the production."""
    for _ in range(5):
        worker = Worker.objects.select_related("production").filter(pk=pk).first()
        target = worker.production if worker else None
        if worker is None or target is None or not target.runs_on.remote:
            return {}
        try:
            target.runs_on.point_production(worker, target)
            for hostname in domains_served_by(worker):
                target.runs_on.point_domain(hostname, target)
        except BuildFailed as exc:
            Worker.objects.filter(pk=pk, production=target).update(alias_error=exc.message[:500])
            return {worker.name: "failed"}
        if Worker.objects.filter(pk=pk, production=target).update(
            alias_target=target, alias_error=""
        ):
            return {worker.name: target.short_id}
    return {}


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_TRIES)
def move_aliases(self, worker_pks: list[int]) -> dict[str, str]:
    moved, waiting = {}, []
    for pk in worker_pks:
        try:
            done = move_one(pk)
        except TransientBackendError as exc:
            waiting.append((pk, exc))
            continue
        if done:
            moved.update(done)
    if waiting:
        pks = [pk for pk, _ in waiting]
        first = waiting[0][1]
        if self.request.retries >= MAX_TRIES:
            Worker.objects.filter(pk__in=pks).update(alias_error=f"Kept failing: {first}"[:500])
            return moved
        delay = (
            first.retry_after
            if first.retry_after is not None
            else min(60.0, 2.0**self.request.retries)
        )
        raise self.retry(args=(pks,), countdown=delay * random.uniform(1.0, 1.2), exc=first)  # noqa: S311
    return moved
