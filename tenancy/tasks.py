"""Celery tasks of tenancy."""

from celery import shared_task

from . import events


@shared_task
def quota_reached(tenant_id: int, quota: str, message: str) -> None:
    events.quota_reached(tenant_id, quota, message)
