"""Celery tasks of releases: the canary watch."""

from celery import shared_task

from .production import watch_canaries


@shared_task
def check_canaries() -> list[str]:
    """Roll back the canaries whose error rate passed the stable side's by their margin."""
    return watch_canaries()
