"""Celery tasks of durable runs and schedules."""

from celery import shared_task

from . import lifecycle, schedules


@shared_task(acks_late=True, reject_on_worker_lost=True)
def execute_run(run_pk: int) -> str | None:
    """One attempt of a durable run (runs.lifecycle)."""
    return lifecycle.execute(run_pk)


@shared_task
def sweep_runs() -> dict[str, int]:
    """Runs whose Celery worker died, or whose message Redis lost, taken back."""
    return lifecycle.sweep()


@shared_task
def fire_schedules() -> int:
    """Start the runs of the schedules that are due (runs.schedules)."""
    return schedules.fire_due()
