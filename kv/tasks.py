"""Celery tasks of kv."""

from celery import shared_task

from . import store


@shared_task
def sweep_expired() -> int:
    """Expired entries leave the table (readers skip them already); their bytes leave the quota."""
    return store.sweep()
