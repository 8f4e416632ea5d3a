"""Celery tasks of releases: the canary watch (and, registered from their modules, moving
aliases and tenants' domains on back ends that serve names)."""

from celery import shared_task

from .domains import check_domains, release_domain, sync_domain
from .production import watch_canaries

__all__ = ["check_canaries", "check_domains", "release_domain", "sync_domain"]


@shared_task
def check_canaries() -> list[str]:
    """Roll back the canaries whose error rate passed the stable side's by their margin."""
    return watch_canaries()
