"""Celery tasks of workers."""

from celery import shared_task

from . import domains


@shared_task
def check_domains() -> int:
    """Tenants' domains whose check is due (pending ones every minute, verified ones hourly)."""
    return domains.check_due()
