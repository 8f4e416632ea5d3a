"""Moving production aliases on back ends that serve production themselves (Vercel): after
a change commits, each worker's alias is pointed at what it now serves. The task reads the
worker's production when it runs, so of two quick promotions the later one always wins, and
running it twice changes nothing."""

import random

from celery import shared_task

from workers.models import Worker

from .backends import BuildFailed, TransientBackendError

MAX_TRIES = 8


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_TRIES)
def move_aliases(self, worker_pks: list[int]) -> dict[str, str]:
    moved, waiting = {}, []
    for worker in Worker.objects.select_related("production").filter(pk__in=worker_pks):
        target = worker.production
        if target is None or not target.runs_on.remote or worker.alias_target_id == target.pk:
            continue
        try:
            target.runs_on.point_production(worker, target)
        except TransientBackendError as exc:
            waiting.append((worker.pk, exc))
            continue
        except BuildFailed as exc:
            Worker.objects.filter(pk=worker.pk, production=target).update(
                alias_error=exc.message[:500]
            )
            moved[worker.name] = "failed"
            continue
        # Only if it still serves that one: a later move is on its way otherwise.
        Worker.objects.filter(pk=worker.pk, production=target).update(
            alias_target=target, alias_error=""
        )
        moved[worker.name] = target.short_id
    if waiting:
        pks = [pk for pk, _ in waiting]
        exc = waiting[0][1]
        if self.request.retries >= MAX_TRIES:
            Worker.objects.filter(pk__in=pks).update(alias_error=f"Kept failing: {exc}"[:500])
            return moved
        delay = (
            exc.retry_after if exc.retry_after is not None else min(60.0, 2.0**self.request.retries)
        )
        raise self.retry(args=(pks,), countdown=delay * random.uniform(1.0, 1.2), exc=exc)  # noqa: S311
    return moved
